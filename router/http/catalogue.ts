// GET /v1/models, POST /v1/embeddings, GET /healthz, GET /readyz.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { retryAfterForSkips, type Decision } from '../decide/engine.ts';
import { settle } from '../decide/chain.ts';
import { RouterError } from '../errors.ts';
import { AUTO_MODEL, type CompiledPolicy } from '../policy/compile.ts';
import { decisionHeaders, forward, type ForwardResult } from '../proxy/forward.ts';
import type { StateView } from '../decide/chain.ts';
import type { RouterService } from '../service.ts';
import { decodeJson, readBody } from './body.ts';
import { grantOf } from './key-gate.ts';
import { openScope, recordOutcome } from './request-scope.ts';
import { sendError, sendJson } from './respond.ts';
import { validateEmbeddingsBody, type EmbeddingsBody } from './validate.ts';

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

/** Embeddings go to routes with `embeddings: true`: a pinned one, or the first that can take it. */
export function decideEmbeddings(model: string, policy: CompiledPolicy, view: StateView): Decision {
  const capable = policy.routeNames.filter((n) => policy.route(n).embeddings);
  const pinned = model === AUTO_MODEL ? undefined : policy.modelToRoute.get(model);
  if (model !== AUTO_MODEL && pinned === undefined) throw new RouterError('model_not_found', `The model "${model}" does not exist here (GET /v1/models lists them).`, { param: 'model' });
  if (capable.length === 0) throw new RouterError('model_not_found', 'No route in this policy serves embeddings (none declares embeddings: true).', { param: 'model' });
  if (pinned !== undefined && !policy.route(pinned).embeddings) throw new RouterError('invalid_request', `Route "${pinned}" does not serve embeddings; use one of: ${capable.join(', ')}.`, { param: 'model' });
  const ctx = { policy, view, hasImage: false, tokensNeeded: 0, auto: pinned === undefined, embeddings: true };
  const candidates = pinned !== undefined ? [pinned] : capable;
  const skipped = [];
  let route: string | null = null;
  const visited = new Set<string>();
  for (const c of candidates) {
    const landing = settle(ctx, c, visited);
    skipped.push(...landing.skipped);
    if (landing.route !== null) {
      route = landing.route;
      break;
    }
  }
  return {
    bucket: 'embeddings', reason: pinned !== undefined ? 'pinned_model' : 'embeddings', route, intended: candidates[0]!, pinned: pinned !== undefined,
    hasImage: false, estimatedTokens: 0, requestedMaxTokens: 0, maxTokensSent: undefined, sizeTier: 'small', scores: {}, matched: {}, classified: undefined, skipped, fallbackChain: { busy: [], outage: [] },
    failClosed: false, escalateTo: undefined,
    error: route === null ? new RouterError('upstream_unavailable', 'No embeddings route can take this request now.', { retryAfterS: retryAfterForSkips(skipped, view, policy) }) : undefined,
  };
}

/** The token estimate of an embeddings input: characters / 4 for text, the count for token ids. */
function embeddingTokens(input: EmbeddingsBody['input']): number {
  if (typeof input === 'string') return Math.ceil(input.length / 4);
  let n = 0;
  for (const item of input) n += typeof item === 'string' ? Math.ceil(item.length / 4) : Array.isArray(item) ? item.length : 1;
  return n;
}

export async function handleEmbeddings(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  const scope = openScope(req, res, svc);
  let decision: Decision | undefined;
  let result: ForwardResult | undefined;
  let status = 200;
  let errorCode: string | undefined;
  let model: string | undefined;
  try {
    const { value, text } = decodeJson(await readBody(req, scope.policy.policy.server.max_body_bytes, scope.policy.policy.server.body_timeout_ms));
    const body = validateEmbeddingsBody(value);
    model = body.model;
    if (scope.grant) await svc.keys.checkModel(scope.grant, body.model, { prompt: embeddingTokens(body.input), answer: 0 });
    decision = decideEmbeddings(body.model, scope.policy, svc.states.view);
    if (decision.error) throw decision.error;
    result = await forward({ requestId: scope.requestId, startedAt: scope.startedAt, res, clientSignal: scope.client, policy: scope.policy, decision, upstreamPath: '/embeddings', body, rawBody: text, stream: false, attempts: scope.attempts }, { states: svc.states, metrics: svc.metrics, logs: svc.logs });
    status = result.status;
    if (result.error) {
      errorCode = result.error.code;
      sendError(res, result.error, decisionHeaders({ requestId: scope.requestId, decision }, result.route, result.reason, result.path));
    }
  } catch (err) {
    status = sendError(res, err, decision ? decisionHeaders({ requestId: scope.requestId, decision }, decision.intended, decision.reason, []) : { 'x-request-id': scope.requestId });
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
  } finally {
    recordOutcome(scope, svc, { endpoint: 'embeddings', model, decision, result, status, errorCode, stream: false });
  }
}
