// What every routed request shares: its id, its start time, one policy snapshot, a signal
// that fires when the client goes away, and the one typed record handed to the request sinks
// (the decision log, the request log) at its end.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../decide/engine.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { ForwardResult } from '../proxy/forward.ts';
import { isDecision, type Attempt, type Endpoint, type RequestRecord } from '../obs/request-record.ts';
import { RequestLoggers } from '../obs/request-loggers.ts';
import { Abortable } from '../proxy/signals.ts';
import type { RouterService } from '../service.ts';
import { grantOf, operatorOf } from './key-gate.ts';
import type { KeyGrant } from '../keys/service.ts';
import { requestIdOf } from './respond.ts';

export interface RequestScope {
  requestId: string;
  startedAt: number;
  policy: CompiledPolicy;
  /** Aborts when the client goes away (an emitter, not an AbortController: see proxy/signals.ts). */
  client: Abortable;
  /** The API key's hold on this request (SPEC §12): settled by recordOutcome. */
  grant?: KeyGrant | undefined;
  /** The API key's name: the request log's `client` (undefined: no key was used, the address is). */
  keyName?: string | undefined;
  /** A signed-in web UI page sent it without a key ("ui:admin"): the request log's `client`. */
  operator?: string | undefined;
  /** The client's address and user agent, for the request log. */
  remote: string;
  userAgent: string | null;
  /** Each route tried, pushed by the proxy's chain walk. */
  attempts: Attempt[];
  /** The router's logs as this request writes to them: every line carries its request_id. */
  log: RequestLoggers;
}

export function openScope(req: IncomingMessage, res: ServerResponse, svc: RouterService): RequestScope {
  const grant = grantOf(req);
  const ua = req.headers['user-agent'];
  const requestId = requestIdOf(req);
  return { requestId, startedAt: Date.now(), policy: svc.policy, client: new ClientSignal(res), grant, keyName: grant?.key.name, operator: operatorOf(req), remote: req.socket.remoteAddress ?? 'unknown', userAgent: ua ?? null, attempts: [], log: new RequestLoggers(svc.logs, requestId) };
}

/**
 * Aborts when the response closes before it finished: the client went away ('close' after a
 * finished response is normal). A bound method rather than a closure, as in http/body.ts.
 */
class ClientSignal extends Abortable {
  readonly #res: ServerResponse;
  readonly #onClose = this.onResponseClose.bind(this);

  constructor(res: ServerResponse) {
    super();
    this.#res = res;
    res.on('close', this.#onClose);
  }

  onResponseClose(): void {
    if (!this.#res.writableFinished) this.abort();
  }
}

export interface Outcome {
  endpoint: Endpoint;
  /** The `model` the client asked for. */
  model?: string | undefined;
  decision: Decision | undefined;
  result: ForwardResult | undefined;
  status: number;
  errorCode?: string | undefined;
  stream: boolean;
  prompt?: string | undefined;
  synthetic?: boolean;
  payload?: RequestRecord['payload'];
  /** The client's own session id (Claude Code's), logged to group a session's requests; never routed on. */
  session?: string | undefined;
}

/** The request's record, handed to every sink (decision log, request log), and the request metrics. */
export function recordOutcome(scope: RequestScope, svc: RouterService, o: Outcome): void {
  const usage = o.result?.delivery?.usage ?? null;
  // Reached: an upstream answered, or was asked when the client left (it may have generated).
  if (scope.grant) svc.keys.finish(scope.grant, usage, o.result != null && (o.result.delivery != null || (o.result.clientGone && o.result.path.length > 0)));
  const record = requestRecord(scope, o);
  for (const sink of svc.requestSinks) sink.write(record);
  if (!isDecision(o.endpoint)) return;
  const route = record.route ?? 'none';
  // A token count is not a generation: its latency would blur the route's.
  const timed = route !== 'none' && o.endpoint !== 'count_tokens';
  svc.metrics.recordRequest({
    route,
    bucket: record.bucket ?? 'none',
    reason: record.reason,
    status: record.status,
    durationS: timed ? record.duration_ms / 1000 : null,
    ttfbS: timed && record.ttfb_ms !== null ? record.ttfb_ms / 1000 : null,
    promptTokens: timed ? record.prompt_tokens : null,
    completionTokens: record.completion_tokens,
  });
}

export function requestRecord(scope: RequestScope, o: Outcome): RequestRecord {
  const d = o.decision;
  const route = o.result?.route ?? d?.route ?? null;
  const usage = o.result?.delivery?.usage ?? null;
  return {
    request_id: scope.requestId,
    ts: scope.startedAt,
    endpoint: o.endpoint,
    client: scope.keyName ?? scope.operator ?? scope.remote,
    key_name: scope.keyName ?? null,
    user_agent: scope.userAgent,
    model: o.model ?? null,
    bucket: d?.bucket ?? null,
    route,
    served_model: route !== null && Object.hasOwn(scope.policy.doc.routes, route) ? scope.policy.route(route).model : null,
    reason: o.result?.reason ?? d?.reason ?? (o.status < 400 ? o.endpoint : 'invalid_request'),
    fallback_path: o.result?.path.join('>') ?? d?.skipped.map((s) => s.route).join('>') ?? '',
    status: o.result?.clientGone ? 499 : o.status,
    error_code: o.errorCode ?? (o.result?.delivery?.upstreamError ? 'upstream_error' : null),
    stream: o.stream,
    ttfb_ms: o.result?.delivery?.ttfbMs ?? null,
    duration_ms: Date.now() - scope.startedAt,
    prompt_tokens: usage ? usage.prompt : null,
    completion_tokens: usage ? usage.completion : null,
    estimated_tokens: d?.estimatedTokens ?? null,
    max_tokens_sent: o.result?.maxTokensSent,
    session: o.session,
    attempts: scope.attempts,
    decision: d
      ? { scores: d.scores, matched: d.matched, pinned: d.pinned, has_image: d.hasImage, size_tier: d.sizeTier, intended_route: d.intended, skipped: d.skipped }
      : null,
    policy_hash: scope.policy.hash,
    synthetic: o.synthetic ?? false,
    prompt: o.prompt,
    payload: o.payload,
  };
}
