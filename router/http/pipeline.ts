// One pipeline for every routed endpoint (/v1/chat/completions, /v1/embeddings, /v1/messages,
// /v1/responses, /v1/completions). Its stages run in this order, for every request:
//   1. scope     request id, one policy snapshot, the client's signal (request-scope.ts)
//   2. read      the body within server.max_body_bytes / body_timeout_ms, as JSON (body.ts)
//   3. parse     the endpoint's own validation and translation into what is routed
//   4. admit     hooks before the decision: the API key's overrides, models and budget (§12)
//   5. decide    decide/: the classifier's decision, or the embeddings rule; refused → error
//   6. forward   proxy/: capacity, failover, fail-closed validation; the answer in the
//                client's protocol (the endpoint's Dialect, or the chat answer as it comes)
//   7. record    the typed request record to every sink, metrics, the key's settlement
// An endpoint is data (RoutedEndpoint below): how to parse it, how to decide, the upstream
// path, and how to answer. A failure at any stage leaves as an error in the client's envelope
// with the decision headers known so far, and the request is recorded all the same.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageText, requestFacts, type ChatBody, type RequestFacts } from '../classify/request-facts.ts';
import { decide, type Decision } from '../decide/engine.ts';
import { RouterError } from '../errors.ts';
import type { Endpoint } from '../obs/request-record.ts';
import type { Dialect } from '../proxy/dialect.ts';
import { forwardFailClosed, isFailClosedRequest } from '../proxy/fail-closed.ts';
import type { ForwardRequest } from '../proxy/forward-request.ts';
import { decisionHeaders, forward, type ForwardDeps, type ForwardResult } from '../proxy/forward.ts';
import { ResponseCapture, storesPayloads } from '../reqlog/payload-capture.ts';
import type { RouterService } from '../service.ts';
import { decodeJson, readBody } from './body.ts';
import { forwardFailClosedTranslated } from './protocol-fail-closed.ts';
import { openScope, recordOutcome, type RequestScope } from './request-scope.ts';
import { header, sendError } from './respond.ts';

/** What stage 3 makes of a request body. */
export interface Routed {
  /** The request as the upstream's API takes it (chat completions, or embeddings). */
  body: Record<string, unknown>;
  /** The client's JSON text of `body`, when it is forwarded unchanged apart from the model. */
  rawBody: string | undefined;
  /** The chat request classified and checked for fail-closed; undefined for embeddings. */
  chat: ChatBody | undefined;
  /** The `model` the client asked for. */
  model: string;
  stream: boolean;
  /** Tokens the API key reserves for this request (answer undefined: the policy's default). */
  reserve: { prompt: number; answer: number | undefined };
}

export interface RoutedEndpoint<P extends Routed = Routed> {
  /** The request log's name for it. */
  name: Endpoint;
  /** Below the route's URL. */
  upstreamPath: '/chat/completions' | '/embeddings';
  parse(value: unknown, text: string, scope: RequestScope): P;
  decide(parsed: P, req: IncomingMessage, scope: RequestScope, svc: RouterService): Decision;
  /** Another client protocol (SPEC §13): what each route is sent and how its answer is translated. */
  dialect?(parsed: P, decision: Decision, text: string, value: unknown): Dialect;
  /** The client's session id for the log (parsed is undefined when the body did not parse). */
  session?(req: IncomingMessage, parsed: P | undefined): string | undefined;
  /** request_log.store_payloads keeps this endpoint's request and answer. */
  storesPayload?: boolean;
}

/** A hook of stage 4: throws a RouterError to refuse the request before any routing work. */
export type AdmitHook = (req: IncomingMessage, scope: RequestScope, svc: RouterService, parsed: Routed) => void | Promise<void>;

/** The API key's hold (SPEC §12): routing headers it may use, its models, its token budget. */
const keyLimits: AdmitHook = async (req, scope, svc, parsed) => {
  if (!scope.grant) return;
  if (parsed.chat) svc.keys.checkOverrides(scope.grant, scope.policy, header(req, 'x-homelab-route'), header(req, 'x-homelab-bucket'));
  await svc.keys.checkModel(scope.grant, parsed.model, parsed.reserve);
};

export const ADMIT_HOOKS: readonly AdmitHook[] = [keyLimits];

/** The request facts the classifier and the decision read, with the policy's classifier scope. */
export function factsFor(body: ChatBody, scope: Pick<RequestScope, 'policy'>): RequestFacts {
  const c = scope.policy.doc.classifier;
  return requestFacts(body, c.scope, c.lookback_turns);
}

/** The classifier's decision for a chat request, with the routing headers the client sent. */
export function decideChat(req: IncomingMessage, facts: RequestFacts, scope: RequestScope, svc: RouterService): Decision {
  return decide({ facts, headerRoute: header(req, 'x-homelab-route'), headerBucket: header(req, 'x-homelab-bucket') }, scope.policy, svc.states.view);
}

export async function readJson(req: IncomingMessage, scope: RequestScope): Promise<{ value: unknown; text: string }> {
  const server = scope.policy.doc.server;
  return decodeJson(await readBody(req, server.max_body_bytes, server.body_timeout_ms));
}

// Built once per service, not per request (README "Performance": no named closures on the hot path).
const depsBySvc = new WeakMap<RouterService, ForwardDeps>();

export function forwardDeps(svc: RouterService): ForwardDeps {
  let deps = depsBySvc.get(svc);
  if (!deps) {
    deps = { states: svc.states, metrics: svc.metrics, onCudaFault: (route: string) => svc.cudaFault(route) };
    depsBySvc.set(svc, deps);
  }
  return deps;
}

export async function serveRouted<P extends Routed>(ep: RoutedEndpoint<P>, req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  const scope = openScope(req, res, svc);
  let parsed: P | undefined;
  let decision: Decision | undefined;
  let result: ForwardResult | undefined;
  let status = 200;
  let errorCode: string | undefined;
  let synthetic = false;
  let payloadText: string | undefined;
  const capture = ep.storesPayload && storesPayloads(scope.policy.doc, svc.requestLog !== undefined) ? new ResponseCapture(scope.policy.doc.request_log.payload_max_bytes) : undefined;
  try {
    let read: { value: unknown; text: string } | undefined = await readJson(req, scope);
    parsed = ep.parse(read.value, read.text, scope);
    if (capture) payloadText = read.text;
    for (const hook of ADMIT_HOOKS) await hook(req, scope, svc, parsed);
    decision = ep.decide(parsed, req, scope, svc);
    if (decision.error) throw decision.error;
    const dialect = ep.dialect?.(parsed, decision, read.text, read.value);
    const request: ForwardRequest = {
      requestId: scope.requestId,
      startedAt: scope.startedAt,
      log: scope.log,
      res,
      clientSignal: scope.client,
      policy: scope.policy,
      decision,
      upstreamPath: ep.upstreamPath,
      body: parsed.body,
      rawBody: parsed.rawBody,
      stream: parsed.stream,
      dialect,
      attempts: scope.attempts,
      tap: capture?.tap,
    };
    // The body's text is the forward request's alone from here, so it can let go of it (see proxy/forward.ts).
    read = undefined;
    parsed.rawBody = undefined;
    const deps = forwardDeps(svc);
    if (parsed.chat && isFailClosedRequest(decision, parsed.chat)) {
      const fc = dialect ? await forwardFailClosedTranslated({ ...request, dialect }, deps, svc.schemas, parsed.stream) : await forwardFailClosed(request, deps, svc.schemas);
      result = fc.result;
      synthetic = fc.synthetic;
      const captured = fc.result.delivery?.captured;
      if (capture && captured) capture.push(captured.bytes);
    } else {
      result = await forward(request, deps);
    }
    status = result.status;
    if (result.error) {
      errorCode = result.error.code;
      status = sendError(res, result.error, decisionHeaders({ requestId: scope.requestId, decision }, result.route, result.reason, result.path));
    }
  } catch (err) {
    const headers = decision ? decisionHeaders({ requestId: scope.requestId, decision }, decision.route ?? decision.intended, decision.reason, decision.skipped.map((s) => s.route)) : { 'x-request-id': scope.requestId };
    status = sendError(res, err, headers);
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
    if (!(err instanceof RouterError)) scope.log.service.error({ err }, `unexpected error in ${ep.name} handler`);
  } finally {
    const chat = parsed?.chat;
    const prompt = scope.policy.doc.logging.prompts && chat ? chat.messages.map(messageText).join('\n') : undefined;
    const payload = capture && payloadText !== undefined ? { request: payloadText, response: capture.text() } : undefined;
    recordOutcome(scope, svc, { endpoint: ep.name, model: parsed?.model, decision, result, status, errorCode, stream: parsed?.stream === true, prompt, synthetic, payload, session: ep.session?.(req, parsed) });
  }
}
