// The hot path: /v1/* and the probes, served straight from node:http. Express (router/app.ts)
// serves everything else. The split is measured, not taste: see README "Performance".
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import type { RouterService } from '../service.ts';
import { handleExplain } from './chat.ts';
import { handleHealthz, handleModel, handleModels, handleReadyz } from './catalogue.ts';
import { handleChat, handleCompletions, handleEmbeddings, handleMessages, handleResponses } from './endpoints.ts';
import { handleCountTokens } from './protocols.ts';
import { keyGate } from './key-gate.ts';
import type { UiSessions } from '../keys/sessions.ts';
import { sendError } from './respond.ts';
import { openScope, requestRecord } from './request-scope.ts';
import type { Endpoint } from '../obs/request-record.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, svc: RouterService) => void | Promise<void>;

/** The request log's name for each /v1/* endpoint (a refused method is logged too). */
const ENDPOINTS: Record<string, Endpoint> = {
  '/v1/chat/completions': 'chat',
  '/v1/embeddings': 'embeddings',
  '/v1/messages': 'messages',
  '/v1/messages/count_tokens': 'count_tokens',
  '/v1/responses': 'responses',
  '/v1/completions': 'completions',
  '/v1/route/explain': 'explain',
  '/v1/models': 'models',
};

const ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/v1/chat/completions': { POST: handleChat },
  '/v1/embeddings': { POST: handleEmbeddings },
  '/v1/messages': { POST: handleMessages },
  '/v1/messages/count_tokens': { POST: handleCountTokens },
  '/v1/responses': { POST: handleResponses },
  '/v1/completions': { POST: handleCompletions },
  '/v1/route/explain': { POST: handleExplain },
  '/v1/models': { GET: handleModels },
  '/healthz': { GET: handleHealthz },
  '/readyz': { GET: handleReadyz },
};

const MODEL_PREFIX = '/v1/models/';

/** The methods a path answers, HEAD included wherever GET is. */
function allowed(methods: Partial<Record<string, Handler>>): string {
  const names = Object.keys(methods);
  return (methods.GET ? [...names, 'HEAD'] : names).join(', ');
}

/**
 * Serves the request and returns true, or returns false for Express to handle it. `path` is the
 * request target's path as router/http/edge.ts left it (absolute-form already rewritten).
 * `sessions`: the web UI's, so its playground may call /v1/* without a key (http/key-gate.ts).
 */
export function serveDataPlane(req: IncomingMessage, res: ServerResponse, svc: RouterService, path?: string, sessions?: UiSessions): boolean {
  if (path === undefined) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    path = q === -1 ? url : url.slice(0, q);
  }
  const endpoint = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  let methods = ROUTES[endpoint];
  if (!methods) {
    if (!path.startsWith(MODEL_PREFIX) || path.length === MODEL_PREFIX.length) return false;
    methods = MODEL_ROUTE;
  }
  const method = req.method ?? 'GET';
  // HEAD runs the GET handler; node:http sends its headers and drops the body.
  const handler = methods[method] ?? (method === 'HEAD' ? methods.GET : undefined);
  if (!handler) {
    const allow = allowed(methods);
    const logged = ENDPOINTS[endpoint];
    const scope = logged ? openScope(req, res, svc) : undefined;
    const status = sendError(res, new RouterError('method_not_allowed', `${req.method} is not allowed on ${path}; use ${allow.replace(/, /g, ' or ')}.`), { allow });
    // The request log only: the decision log and the request metrics never counted these.
    if (scope && logged) svc.requestLog?.write(requestRecord(scope, { endpoint: logged, decision: undefined, result: undefined, status, errorCode: 'method_not_allowed', stream: false }));
    return true;
  }
  // Every /v1/* endpoint, present and future, passes the key check (SPEC §12) before any work.
  if (endpoint.startsWith('/v1/')) {
    const pass = keyGate(req, res, methods === MODEL_ROUTE ? '/v1/models' : endpoint, svc.keys, sessions);
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

const MODEL_ROUTE: Partial<Record<string, Handler>> = { GET: handleModel };
