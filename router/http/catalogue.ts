// GET /v1/models, GET /v1/models/{id}, GET /healthz, GET /readyz.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import { AUTO_MODEL, type CompiledPolicy } from '../policy/compile.ts';
import type { RouterService } from '../service.ts';
import { grantOf } from './key-gate.ts';
import { openScope, recordOutcome } from './request-scope.ts';
import { sendError, sendJson } from './respond.ts';

export function modelList(policy: CompiledPolicy, created: number): unknown {
  const data: unknown[] = [{ id: AUTO_MODEL, object: 'model', created, owned_by: 'homelab-router', homelab: { kind: 'auto' } }];
  for (const name of policy.routeNames) {
    const r = policy.route(name);
    for (const alias of r.aliases ?? []) data.push({ id: alias, object: 'model', created, owned_by: 'homelab-router', homelab: { kind: 'alias', route: name } });
  }
  for (const name of policy.routeNames) {
    const r = policy.route(name);
    data.push({ id: r.model, object: 'model', created, owned_by: name, homelab: { kind: 'served', route: name, runtime: r.runtime, vision: r.vision, context_tokens: r.context_tokens } });
  }
  return { object: 'list', data };
}

export function handleModels(req: IncomingMessage, res: ServerResponse, svc: RouterService): void {
  const scope = openScope(req, res, svc);
  const list = modelList(scope.policy, Math.floor(svc.startedAt / 1000)) as { object: string; data: Array<{ id: string }> };
  // A key sees the models it may use (SPEC §12), so a client's model picker offers only those.
  const key = grantOf(req)?.key;
  sendJson(res, 200, key ? { ...list, data: list.data.filter((m) => key.modelAllowed(m.id)) } : list, { 'x-request-id': scope.requestId });
  recordOutcome(scope, svc, { endpoint: 'models', decision: undefined, result: undefined, status: 200, stream: false });
}

/** GET /v1/models/{id}: one entry of the list (ids contain `/`, so the rest of the path is the id). */
export function handleModel(req: IncomingMessage, res: ServerResponse, svc: RouterService): void {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  let id = (q === -1 ? url : url.slice(0, q)).slice('/v1/models/'.length);
  try {
    id = decodeURIComponent(id);
  } catch {
    /* not percent-encoded: the id as written */
  }
  const list = modelList(svc.policy, Math.floor(svc.startedAt / 1000)) as { data: Array<{ id: string }> };
  const model = list.data.find((m) => m.id === id);
  if (model) sendJson(res, 200, model);
  else sendError(res, new RouterError('model_not_found', `The model "${id}" does not exist here (GET /v1/models lists them).`, { param: 'model' }));
}

export function handleHealthz(_req: IncomingMessage, res: ServerResponse, svc: RouterService): void {
  sendJson(res, 200, { status: 'ok', uptime_s: Math.round((Date.now() - svc.startedAt) / 1000) });
}

export function handleReadyz(_req: IncomingMessage, res: ServerResponse, svc: RouterService): void {
  const healthy = svc.states.all().filter((r) => r.health.healthy).map((r) => r.name);
  // A replica cut off from Redis still serves (on its local share) and says so.
  const cluster = svc.cluster ? { cluster: svc.cluster.status } : {};
  if (healthy.length === 0) sendJson(res, 503, { status: 'not_ready', reason: 'no route is healthy', policy_hash: svc.policy.hash, ...cluster });
  else sendJson(res, 200, { status: 'ready', healthy_routes: healthy, policy_hash: svc.policy.hash, ...cluster });
}
