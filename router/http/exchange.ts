// What every routed request shares: its id, its start time, one policy snapshot, a signal
// that fires when the client goes away, and the one decision-log line written at its end.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../decide/engine.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { ForwardResult } from '../proxy/forward.ts';
import { Abortable } from '../proxy/signals.ts';
import type { RouterService } from '../service.ts';
import { grantOf } from '../keys/gate.ts';
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
  /** The API key's name: the request log's `client` (undefined: no key was used). */
  keyName?: string | undefined;
}

export function openScope(req: IncomingMessage, res: ServerResponse, svc: RouterService): RequestScope {
  const grant = grantOf(req);
  return { requestId: requestIdOf(req), startedAt: Date.now(), policy: svc.policy, client: new ClientSignal(res), grant, keyName: grant?.key.name };
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
  endpoint: 'chat' | 'embeddings' | 'messages' | 'responses' | 'completions' | 'count_tokens';
  decision: Decision | undefined;
  result: ForwardResult | undefined;
  status: number;
  errorCode?: string | undefined;
  stream: boolean;
  prompt?: string | undefined;
  synthetic?: boolean;
  /** The client's own session id (Claude Code's), logged to group a session's requests; never routed on. */
  session?: string | undefined;
}

/** One line in router-decisions.jsonl and the request metrics, for every routed request. */
export function recordOutcome(scope: RequestScope, svc: RouterService, o: Outcome): void {
  const latencyMs = Date.now() - scope.startedAt;
  const d = o.decision;
  const route = o.result?.route ?? d?.route ?? 'none';
  const reason = o.result?.reason ?? d?.reason ?? 'invalid_request';
  const usage = o.result?.delivery?.usage ?? null;
  const ttfbMs = o.result?.delivery?.ttfbMs ?? null;
  const status = o.result?.clientGone ? 499 : o.status;
  // Reached: an upstream answered, or was asked when the client left (it may have generated).
  if (scope.grant) svc.keys.finish(scope.grant, usage, o.result != null && (o.result.delivery != null || (o.result.clientGone && o.result.path.length > 0)));
  svc.logs.decision({
    request_id: scope.requestId,
    client: scope.keyName,
    endpoint: o.endpoint,
    session: o.session,
    bucket: d?.bucket ?? null,
    route: route === 'none' ? null : route,
    reason,
    fallback_path: o.result?.path.join('>') ?? d?.skipped.map((s) => s.route).join('>') ?? '',
    status,
    error: o.errorCode ?? (o.result?.delivery?.upstreamError ? 'upstream_error' : undefined),
    latency_ms: latencyMs,
    ttfb_ms: ttfbMs,
    stream: o.stream,
    pinned: d?.pinned ?? false,
    has_image: d?.hasImage ?? false,
    estimated_tokens: d?.estimatedTokens ?? null,
    size_tier: d?.sizeTier ?? null,
    max_tokens_sent: o.result?.maxTokensSent,
    tokens: usage ? { prompt: usage.prompt, completion: usage.completion } : null,
    synthetic: o.synthetic || undefined,
    policy_hash: scope.policy.hash,
    prompt: o.prompt,
  });
  const m = svc.metrics;
  m.requests.inc({ route, bucket: d?.bucket ?? 'none', reason, code: String(status) });
  // A token count is not a generation: its latency would blur the route's.
  if (route !== 'none' && o.endpoint !== 'count_tokens') {
    m.duration.observe({ route }, latencyMs / 1000);
    if (ttfbMs !== null) m.ttfb.observe({ route }, ttfbMs / 1000);
    if (usage) {
      m.tokens.inc({ route, type: 'prompt' }, usage.prompt);
      m.tokens.inc({ route, type: 'completion' }, usage.completion);
    }
  }
}
