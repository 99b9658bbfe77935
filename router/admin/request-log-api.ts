// /admin/api/*: the request log over HTTP (SPEC §10), for the CLI and the web UI. Admin bearer
// token, like the rest of /admin. Reads go to the read-only connection; the live feed comes
// from the writer's batches, so no client ever polls the database.
import express, { type Request, type Response, type Router } from 'express';
import { requireAdminToken } from './auth.ts';
import { RouterError } from '../errors.ts';
import type { RouterService } from '../service.ts';
import { parseAnalytics, parseFilters, RequestLogReader } from '../reqlog/reader.ts';
import type { RequestRow } from '../reqlog/row.ts';
import type { UiSessions } from '../keys/sessions.ts';

// A comment line keeps idle proxies and browsers from closing the live feed.
const HEARTBEAT_MS = 15_000;

export function requestLogApi(svc: RouterService, sessions?: UiSessions): Router {
  const router = express.Router();
  router.use(requireAdminToken(svc.adminToken, { isAdminKey: (bearer) => svc.keys.isAdminKey(bearer), ...(sessions ? { sessions } : {}) }));
  const log = svc.requestLog;
  const reader = log ? new RequestLogReader(log.path) : undefined;
  const need = (): RequestLogReader => {
    if (!reader) throw new RouterError('request_log_unavailable', 'This router keeps no request log (it was started without a data directory).');
    return reader;
  };

  router.get('/requests', (req, res) => {
    res.json(need().list(parseFilters(req.query as Record<string, unknown>)));
  });

  router.get('/requests/:request_id', (req, res) => {
    const id = String(req.params.request_id);
    const row = need().get(id);
    if (!row) throw new RouterError('not_found', `No request "${id}" in the request log (never seen, or older than request_log.retention_days).`);
    res.json(row);
  });

  router.get('/analytics', (req, res) => {
    const { range, by } = parseAnalytics(req.query as Record<string, unknown>);
    res.json(need().analytics(range, by));
  });

  router.get('/events', (req: Request, res: Response) => {
    if (!log) throw new RouterError('request_log_unavailable', 'This router keeps no request log (it was started without a data directory).');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', connection: 'keep-alive' });
    res.write(': homelab-router request feed\n\n');
    const send = (row: RequestRow) => res.write(`event: request\nid: ${row.request_id}\ndata: ${JSON.stringify(row)}\n\n`);
    const beat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    const unsubscribe = log.subscribe(send, () => {
      clearInterval(beat);
      res.end();
    });
    req.on('close', () => {
      clearInterval(beat);
      unsubscribe();
    });
  });

  router.all(['/requests', '/requests/:request_id', '/analytics', '/events'], (req: Request) => {
    throw new RouterError('method_not_allowed', `${req.method} is not allowed here; the request log is read with GET.`);
  });
  return router;
}
