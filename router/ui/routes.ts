// /ui/*: the web UI's page, modules and sign-in. The pages call the admin API (/admin/*) and the
// data plane with the session cookie set here; see admin/auth.ts for how a cookie is accepted.
import express, { type Request, type Response, type Router } from 'express';
import { RouterError } from '../errors.ts';
import { adminDisabledError, tokenMatches } from '../admin/auth.ts';
import type { RouterService } from '../service.ts';
import { uiAssets } from './assets.ts';
import { clearedSessionCookie, sessionCookie, type UiSessions } from '../keys/sessions.ts';

export function uiRouter(svc: RouterService, sessions: UiSessions): Router {
  const router = express.Router({ strict: true });
  const audit = (req: Request, action: string) => svc.logs.service.info({ ui: action, remote: req.socket.remoteAddress }, `ui ${action}`);

  router.get('/api/session', (req, res) => {
    // Always 200, so the page's first "who am I" call is never an error in the console.
    const s = sessions.fromRequest(req);
    res.setHeader('cache-control', 'no-store');
    res.json(s ? { signed_in: true, subject: s.subject, expires_at: new Date(s.expiresAt).toISOString() } : { signed_in: false, admin_enabled: svc.adminToken !== undefined });
  });

  router.post('/api/login', express.json({ limit: '4kb' }), (req, res) => {
    const token = (req.body as { token?: unknown } | undefined)?.token;
    if (typeof token !== 'string' || token === '') throw new RouterError('invalid_request', 'Send {"token": "<admin token or admin key>"}.', { param: 'token' });
    const given = token.trim();
    // The admin token, or an API key marked admin: true (SPEC §12).
    const byToken = svc.adminToken !== undefined && tokenMatches(given, svc.adminToken);
    const keyId = byToken ? null : svc.keys.adminKeyId(given);
    const subject = byToken ? 'admin' : keyId !== null ? 'admin key' : null;
    if (subject === null) {
      audit(req, 'sign-in refused');
      if (!svc.adminToken) throw adminDisabledError();
      throw new RouterError('unauthorized', 'That is not the admin token (HOMELAB_ROUTER_ADMIN_TOKEN of this router) nor an admin key.');
    }
    // A session opened with an admin key ends when that key is revoked, expires or loses admin.
    const s = sessions.create(subject, Date.now(), keyId !== null ? () => svc.keys.isAdminKeyId(keyId) : undefined);
    audit(req, 'sign-in');
    res.setHeader('set-cookie', sessionCookie(s));
    res.setHeader('cache-control', 'no-store');
    res.json({ signed_in: true, subject: s.subject, expires_at: new Date(s.expiresAt).toISOString() });
  });

  router.post('/api/logout', (req, res) => {
    const s = sessions.fromRequest(req);
    if (s) sessions.revoke(s.id);
    res.setHeader('set-cookie', clearedSessionCookie());
    res.json({ signed_in: false });
  });

  router.get('/', (_req, res) => sendAsset(res, ''));
  router.get(/^\/(app|vendor)\/.+$/, (req, res, next) => {
    if (!uiAssets().files.has(req.path.slice(1))) return next();
    sendAsset(res, req.path.slice(1));
  });
  // Any other path below /ui/ is a page of the single-page app: the page itself answers it.
  router.get(/^\/(overview|requests|upstreams|policy|playground|keys)(\/.*)?$/, (_req, res) => sendAsset(res, ''));
  return router;
}

function sendAsset(res: Response, path: string): void {
  const { files, csp } = uiAssets();
  const a = files.get(path)!;
  res.setHeader('content-type', a.type);
  res.setHeader('etag', a.etag);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'same-origin');
  if (path === '') {
    res.setHeader('content-security-policy', csp);
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('cache-control', 'no-cache');
  } else {
    res.setHeader('cache-control', 'no-cache');
  }
  res.setHeader('vary', 'accept-encoding');
  if (res.req.headers['if-none-match'] === a.etag) {
    res.status(304).end();
    return;
  }
  const gzip = /\bgzip\b/.test(String(res.req.headers['accept-encoding'] ?? ''));
  if (gzip) res.setHeader('content-encoding', 'gzip');
  const body = gzip ? a.gzip : a.body;
  res.setHeader('content-length', body.length);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
