// Who may use /admin/*: the admin bearer token (both sides are hashed before the constant-time
// compare, so neither the token's bytes nor its length leak through timing), an API key marked
// `admin: true` (SPEC §12), or a web UI session cookie. A cookie is sent by the browser on its
// own, so a cookie-authenticated mutation must also carry the UI's custom header and, when the
// browser names an Origin, come from this host: a page on another site can do neither.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { RouterError } from '../errors.ts';
import { fromOwnPages, UI_CSRF_HEADER, type UiSessions } from '../keys/sessions.ts';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function adminDisabledError(): RouterError {
  return new RouterError('admin_disabled', 'The admin API is disabled: no token is configured. Set HOMELAB_ROUTER_ADMIN_TOKEN (e.g. `export HOMELAB_ROUTER_ADMIN_TOKEN=$(openssl rand -hex 32)`) and restart the router.');
}

export interface AdminAuthOptions {
  /** Also accepts an API key marked `admin: true` as the bearer token. */
  isAdminKey?: (bearer: string) => boolean;
  /** Web UI sessions (cookie). */
  sessions?: UiSessions;
}

export function requireAdminToken(expected: string | undefined, opts: AdminAuthOptions = {}) {
  const isAdminKey = opts.isAdminKey ?? (() => false);
  return (req: Request, res: Response, next: NextFunction): void => {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    if (bearer !== undefined && isAdminKey(bearer)) {
      next();
      return;
    }
    if (bearer === undefined && opts.sessions?.fromRequest(req)) {
      next(SAFE_METHODS.has(req.method) || fromOwnPages(req) ? undefined : new RouterError('forbidden', `A signed-in browser must send the ${UI_CSRF_HEADER} header from this router's own pages to change anything.`));
      return;
    }
    if (!expected) {
      next(adminDisabledError());
      return;
    }
    if (bearer === undefined || !tokenMatches(bearer, expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="homelab-router admin"');
      next(new RouterError('unauthorized', bearer !== undefined ? 'The admin token is wrong.' : 'Missing admin token: send "Authorization: Bearer $HOMELAB_ROUTER_ADMIN_TOKEN" (or sign in to the web UI at /ui/).'));
      return;
    }
    next();
  };
}
