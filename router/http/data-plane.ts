// The hot path: /v1/* and the probes, served straight from node:http. Express (router/app.ts)
// serves everything else. The split is measured, not taste: see README "Performance".
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import type { RouterService } from '../service.ts';
import { handleChat, handleExplain } from './chat.ts';
import { handleEmbeddings, handleHealthz, handleModels, handleReadyz } from './catalogue.ts';
import { sendError } from './respond.ts';
import { openScope, requestRecord } from './exchange.ts';
import type { Endpoint } from '../obs/request-record.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, svc: RouterService) => void | Promise<void>;

/** The request log's name for each /v1/* endpoint (a refused method is logged too). */
const ENDPOINTS: Record<string, Endpoint> = { '/v1/chat/completions': 'chat', '/v1/embeddings': 'embeddings', '/v1/route/explain': 'explain', '/v1/models': 'models' };

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
  const known = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const methods = ROUTES[known];
  if (!methods) return false;
  const handler = methods[req.method ?? 'GET'];
  if (!handler) {
    const endpoint = ENDPOINTS[known];
    const scope = endpoint ? openScope(req, res, svc) : undefined;
    const status = sendError(res, new RouterError('method_not_allowed', `${req.method} is not allowed on ${path}; use ${Object.keys(methods).join(' or ')}.`), { allow: Object.keys(methods).join(', ') });
    // The request log only: the decision log and the request metrics never counted these.
    if (scope && endpoint) svc.requestLog?.write(requestRecord(scope, { endpoint, decision: undefined, result: undefined, status, errorCode: 'method_not_allowed', stream: false }));
    return true;
  }
  Promise.resolve(handler(req, res, svc)).catch((err: unknown) => {
    svc.logs.service.error({ err, path }, 'unhandled error in data plane');
    sendError(res, err);
  });
  return true;
}
