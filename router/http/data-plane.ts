// The hot path: /v1/* and the probes, served straight from node:http. Express (router/app.ts)
// serves everything else. The split is measured, not taste: see README "Performance".
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import type { RouterService } from '../service.ts';
import { handleChat, handleExplain } from './chat.ts';
import { handleEmbeddings, handleHealthz, handleModels, handleReadyz } from './catalogue.ts';
import { keyGate } from '../keys/gate.ts';
import { sendError } from './respond.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, svc: RouterService) => void | Promise<void>;

const ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/v1/chat/completions': { POST: handleChat },
  '/v1/embeddings': { POST: handleEmbeddings },
  '/v1/route/explain': { POST: handleExplain },
  '/v1/models': { GET: handleModels },
  '/healthz': { GET: handleHealthz },
  '/readyz': { GET: handleReadyz },
};

/** Serves the request and returns true, or returns false for Express to handle it. */
export function serveDataPlane(req: IncomingMessage, res: ServerResponse, svc: RouterService): boolean {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const endpoint = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const methods = ROUTES[endpoint];
  if (!methods) return false;
  const handler = methods[req.method ?? 'GET'];
  if (!handler) {
    sendError(res, new RouterError('method_not_allowed', `${req.method} is not allowed on ${path}; use ${Object.keys(methods).join(' or ')}.`), { allow: Object.keys(methods).join(', ') });
    return true;
  }
  // Every /v1/* endpoint, present and future, passes the key check (SPEC §12) before any work.
  if (endpoint.startsWith('/v1/')) {
    const pass = keyGate(req, res, endpoint, svc.keys);
    if (pass === false) return true;
    if (pass !== true) {
      pass.then((ok) => ok && run(handler, req, res, svc, path), (err: unknown) => sendError(res, err));
      return true;
    }
  }
  run(handler, req, res, svc, path);
  return true;
}

function run(handler: Handler, req: IncomingMessage, res: ServerResponse, svc: RouterService, path: string): void {
  Promise.resolve(handler(req, res, svc)).catch((err: unknown) => {
    svc.logs.service.error({ err, path }, 'unhandled error in data plane');
    sendError(res, err);
  });
}
