// POST /v1/chat/completions and POST /v1/route/explain: read → validate → facts → decide →
// forward (or, for explain, describe). One policy snapshot per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestFacts, type ChatBody, type RequestFacts, messageText } from '../classify/request-facts.ts';
import { decide, type Decision } from '../decide/engine.ts';
import { staticChain } from '../decide/chain.ts';
import { RouterError } from '../errors.ts';
import { decisionHeaders, forward, type ForwardDeps, type ForwardResult } from '../proxy/forward.ts';
import type { ForwardRequest } from '../proxy/forward-request.ts';
import { isFailClosedRequest, forwardFailClosed } from '../proxy/fail-closed.ts';
import type { RouterService } from '../service.ts';
import { decodeJson, readBody } from './body.ts';
import { openScope, recordOutcome, type RequestScope } from './request-scope.ts';
import { header, sendError, sendJson } from './respond.ts';
import { validateChatBody } from './validate.ts';
import { ResponseCapture, storesPayloads } from '../reqlog/payload-capture.ts';

async function readChat(req: IncomingMessage, scope: RequestScope): Promise<{ body: ChatBody; text: string }> {
  const { value, text } = decodeJson(await readBody(req, scope.policy.policy.server.max_body_bytes, scope.policy.policy.server.body_timeout_ms));
  return { body: validateChatBody(value), text };
}

export function factsFor(body: ChatBody, scope: RequestScope): RequestFacts {
  const c = scope.policy.policy.classifier;
  return requestFacts(body, c.scope, c.lookback_turns);
}

export function decideFor(req: IncomingMessage, facts: RequestFacts, scope: RequestScope, svc: RouterService): Decision {
  return decide({ facts, headerRoute: header(req, 'x-homelab-route'), headerBucket: header(req, 'x-homelab-bucket') }, scope.policy, svc.states.view);
}

// Built once per service, not per request: tsx (esbuild keepNames) renames every named
// closure with Object.defineProperty when it is created, ~0.6 µs each.
const depsBySvc = new WeakMap<RouterService, ForwardDeps>();

export function forwardDeps(svc: RouterService): ForwardDeps {
  let deps = depsBySvc.get(svc);
  if (!deps) {
    deps = { states: svc.states, metrics: svc.metrics, logs: svc.logs, onCudaFault: (route: string) => svc.cudaFault(route) };
    depsBySvc.set(svc, deps);
  }
  return deps;
}

export async function handleChat(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  const scope = openScope(req, res, svc);
  let decision: Decision | undefined;
  let result: ForwardResult | undefined;
  let body: ChatBody | undefined;
  let status = 200;
  let errorCode: string | undefined;
  let synthetic = false;
  let payloadText: string | undefined;
  const capture = storesPayloads(scope.policy.policy, svc.requestLog !== undefined) ? new ResponseCapture(scope.policy.policy.request_log.payload_max_bytes) : undefined;
  try {
    let read: { body: ChatBody; text: string } | undefined = await readChat(req, scope);
    body = read.body;
    if (capture) payloadText = read.text;
    const facts = factsFor(body, scope);
    // The key's model allowlist and token reservation, before any routing work (SPEC §12).
    if (scope.grant) {
      svc.keys.checkOverrides(scope.grant, scope.policy, header(req, 'x-homelab-route'), header(req, 'x-homelab-bucket'));
      await svc.keys.checkModel(scope.grant, body.model, { prompt: facts.estimatedTokens, answer: facts.maxTokens > 0 ? facts.maxTokens : undefined });
    }
    decision = decideFor(req, facts, scope, svc);
    if (decision.error) throw decision.error;
    const exchange: ForwardRequest = { requestId: scope.requestId, startedAt: scope.startedAt, res, clientSignal: scope.client, policy: scope.policy, decision, upstreamPath: '/chat/completions', body, rawBody: read.text, stream: body.stream === true, attempts: scope.attempts, tap: capture?.tap };
    // The text is the exchange's alone from here, so it can let go of it (see forward.ts).
    read = undefined;
    const deps = forwardDeps(svc);
    if (isFailClosedRequest(decision, body)) {
      const fc = await forwardFailClosed(exchange, deps, svc.schemas);
      result = fc.result;
      synthetic = fc.synthetic;
      const captured = fc.result.delivery?.captured;
      if (capture && captured) capture.push(captured.bytes);
    } else {
      result = await forward(exchange, deps);
    }
    status = result.status;
    if (result.error) {
      errorCode = result.error.code;
      sendError(res, result.error, decisionHeaders({ requestId: scope.requestId, decision }, result.route, result.reason, result.path));
    }
  } catch (err) {
    const headers = decision ? decisionHeaders({ requestId: scope.requestId, decision }, decision.route ?? decision.intended, decision.reason, decision.skipped.map((s) => s.route)) : { 'x-request-id': scope.requestId };
    status = sendError(res, err, headers);
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
    if (!(err instanceof RouterError)) svc.logs.service.error({ err, request_id: scope.requestId }, 'unexpected error in chat handler');
  } finally {
    const prompt = scope.policy.policy.logging.prompts && body ? body.messages.map(messageText).join('\n') : undefined;
    const payload = capture && payloadText !== undefined ? { request: payloadText, response: capture.text() } : undefined;
    recordOutcome(scope, svc, { endpoint: 'chat', model: body?.model, decision, result, status, errorCode, stream: body?.stream === true, prompt, synthetic, payload });
  }
}

export async function handleExplain(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  const scope = openScope(req, res, svc);
  let body: ChatBody | undefined;
  let decision: Decision | undefined;
  let status = 200;
  let errorCode: string | undefined;
  try {
    body = (await readChat(req, scope)).body;
    if (scope.grant) {
      svc.keys.checkOverrides(scope.grant, scope.policy, header(req, 'x-homelab-route'), header(req, 'x-homelab-bucket'));
      await svc.keys.checkModel(scope.grant, body.model);
    }
    decision = decideFor(req, factsFor(body, scope), scope, svc);
    sendJson(res, 200, explainBody(decision, scope), { 'x-request-id': scope.requestId });
  } catch (err) {
    status = sendError(res, err, { 'x-request-id': scope.requestId });
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
  } finally {
    // In the request log (it is a /v1/* request), not in the decision log: nothing was routed.
    recordOutcome(scope, svc, { endpoint: 'explain', model: body?.model, decision, result: undefined, status, errorCode, stream: false });
  }
}

export function explainBody(d: Decision, scope: Pick<RequestScope, 'policy'>): Record<string, unknown> {
  const chainFrom = d.route ?? d.intended;
  return {
    route: d.route,
    bucket: d.bucket,
    reason: d.reason,
    scores: d.scores,
    matched: d.matched,
    // Which text the classifier scored: the user turn (0 = last, n = n-th earlier by lookback),
    // how it was split (whole, instruction_tag:<tag>, quoted:<tags>, input:forced_tool), the
    // instruction's start, and the nearest example prompts when the similarity stage ran.
    classified: d.classified ? { turn: d.classified.turn, part: d.classified.part, text: d.classified.text } : null,
    nearest_examples: d.classified?.nearest ?? [],
    has_image: d.hasImage,
    estimated_tokens: d.estimatedTokens,
    size_tier: d.sizeTier,
    // SPEC §5 step 6: what the client asked for, and the lowered value `route` would get.
    max_tokens_requested: d.requestedMaxTokens || null,
    max_tokens_sent: d.maxTokensSent ?? null,
    fallback_chain: d.route === null ? { busy: staticChain(scope.policy, chainFrom, 'busy', d.hasImage), outage: staticChain(scope.policy, chainFrom, 'outage', d.hasImage) } : d.fallbackChain,
    fallback_path: [...d.skipped.map((s) => s.route), ...(d.route ? [d.route] : [])].join('>'),
    pinned: d.pinned,
    intended_route: d.intended,
    skipped: d.skipped,
    fail_closed: d.failClosed,
    policy_hash: scope.policy.hash,
    ...(d.error ? { error: d.error.toBody().error } : {}),
  };
}
