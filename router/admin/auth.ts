// Bearer-token check for /admin/*. Both sides are hashed before the constant-time compare, so
// neither the token's bytes nor its length leak through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { RouterError } from '../errors.ts';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** `isAdminKey`: also accepts an API key marked `admin: true` (SPEC §12) as the bearer token. */
export function requireAdminToken(expected: string | undefined, isAdminKey: (bearer: string) => boolean = () => false) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    if (bearer !== undefined && isAdminKey(bearer)) {
      next();
      return;
    }
    if (!expected) {
      next(new RouterError('admin_disabled', 'The admin API is disabled: no token is configured. Set HOMELAB_ROUTER_ADMIN_TOKEN (e.g. `export HOMELAB_ROUTER_ADMIN_TOKEN=$(openssl rand -hex 32)`) and restart the router.'));
      return;
    }
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !tokenMatches(match[1]!.trim(), expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="homelab-router admin"');
      next(new RouterError('unauthorized', match ? 'The admin token is wrong.' : 'Missing admin token: send "Authorization: Bearer $HOMELAB_ROUTER_ADMIN_TOKEN".'));
      return;
    }
    next();
  };
}
