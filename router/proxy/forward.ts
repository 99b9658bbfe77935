// Walks a decision's route and its fallbacks: admission, attempt, spill on busy, fail over on
// outage, all inside one deadline (SPEC §5 steps 8–11). Commits to the first good response.
import { advance, type ChainContext, type Landing, type Skip } from '../decide/chain.ts';
import type { Decision } from '../decide/engine.ts';
import { RouterError } from '../errors.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { FallbackKind, RouterMetrics } from '../obs/metrics.ts';
import { clientErrorDetail, withoutBodyText } from '../upstream/redact.ts';
import { isLoadingAnswer } from '../upstream/adapters.ts';
import { retryAfterSeconds } from '../decide/retry-estimate.ts';
import type { Attempt } from '../obs/request-record.ts';
import type { RouteRuntime, RouteStates } from '../upstream/route-state.ts';
import { attempt, type AttemptOutcome, type FailureKind } from './attempt.ts';
import { DeadlineSignal } from './signals.ts';
import type { ForwardRequest } from './forward-request.ts';
import { deliver, type Delivery } from './deliver.ts';
import { isEventStream } from './relay.ts';
import { clampedMaxTokens, DEFAULT_CONTEXT_GUARD } from '../decide/context-guard.ts';
import { MAX_TOKEN_KEYS, withTopLevel } from './upstream-body.ts';

export interface ForwardDeps {
  states: RouteStates;
  metrics: RouterMetrics;
  /** A request saw a CUDA error: the watchdog should recover that route's GPU. */
  onCudaFault?: (route: string) => void;
}


export interface ForwardResult {
  status: number;
  route: string | null;
  reason: string;
  path: string[];
  delivery: Delivery | null;
  error: RouterError | null;
  clientGone: boolean;
  /** The lowered max_tokens the serving route got (SPEC §5 step 6), when the guard clamped. */
  maxTokensSent?: number | undefined;
}

type Cause = { kind: 'busy' | 'outage'; route: string; detail: string; rt: RouteRuntime | undefined };

export async function forward(ex: ForwardRequest, deps: ForwardDeps): Promise<ForwardResult> {
  const deadline = ex.startedAt + ex.policy.doc.server.request_timeout_ms;
  // Client gone or deadline passed: ends a wait for a slot and an attempt. A stream committed
  // to the client disarms the deadline (see tryRoute).
  const signal = new DeadlineSignal(ex.clientSignal, deadline);
  try {
    return await walk(ex, deps, signal, deadline);
  } finally {
    signal.dispose();
  }
}

async function walk(ex: ForwardRequest, deps: ForwardDeps, signal: DeadlineSignal, deadline: number): Promise<ForwardResult> {
  const { decision, policy } = ex;
  const ctx: ChainContext = {
    policy,
    view: deps.states.view,
    hasImage: decision.hasImage,
    tokensNeeded: decision.tokensNeeded,
    auto: !decision.pinned,
  };
  const path = decision.skipped.map((s) => s.route);
  const visited = new Set(path);
  let reason = decision.reason;
  let route = decision.route;
  let lastCause: Cause | null = null;
  recordDecisionFallbacks(decision, deps.metrics);
  if (route !== null) visited.add(route);

  while (route !== null) {
    path.push(route);
    const rt = deps.states.get(route);
    const own = decisionHeaders(ex, route, reason, path);
    const sentMax = rt ? clampFor(ex, rt.config.context_tokens) : undefined;
    if (sentMax !== undefined) own['x-homelab-max-tokens'] = String(sentMax);
    const tried = Date.now();
    const outcome: RouteOutcome = rt
      ? await tryRoute(rt, ex, signal, deadline, own, sentMax)
      : { kind: 'failure', failure: 'refused', detail: `${route}: removed by a policy reload`, upstreamCaused: false, cuda: false };
    ex.attempts?.push(attemptOf(route, outcome, tried, ex.clientSignal.aborted, ex.policy));
    if (outcome.kind === 'aborted' || ex.clientSignal.aborted) {
      return { status: 499, route, reason, path, delivery: null, error: null, clientGone: true };
    }
    if (outcome.kind === 'delivered') {
      if (rt && outcome.delivery.upstreamError) noteFailure(rt, { kind: 'failure', detail: outcome.delivery.upstreamError, upstreamCaused: true, cuda: false, failure: 'mid_stream' }, ex, deps, 'after_first_byte');
      else if (rt) rt.noteSuccess();
      return { status: outcome.delivery.status, route, reason, path, delivery: outcome.delivery, error: null, clientGone: outcome.delivery.clientGone, maxTokensSent: sentMax };
    }
    // Busy or failed: note it, then move along the chain unless the request may not move.
    if (outcome.kind === 'busy') {
      lastCause = { kind: 'busy', route, detail: outcome.detail, rt };
    } else {
      lastCause = { kind: 'outage', route, detail: outcome.detail, rt };
      if (rt && outcome.upstreamCaused) noteFailure(rt, outcome, ex, deps);
    }
    if (decision.pinned || Date.now() >= deadline) break;
    const next: Landing = advance(ctx, route, lastCause.kind, visited);
    reason = `${route}_${lastCause.kind === 'busy' ? 'saturated' : 'outage'}`;
    appendSkips(path, next.skipped);
    if (next.route !== null) deps.metrics.fallbacks.inc({ from: route, to: next.route, kind: lastCause.kind });
    route = next.route;
  }
  const error = finalError(lastCause, decision, deadline, policy);
  return { status: error.status, route: path.at(-1) ?? null, reason, path, delivery: null, error, clientGone: false };
}

type RouteOutcome =
  | { kind: 'delivered'; delivery: Delivery }
  | { kind: 'aborted' }
  | { kind: 'busy'; detail: string }
  | { kind: 'failure'; detail: string; upstreamCaused: boolean; cuda: boolean; failure: RouteFailure };

/**
 * How a route failed, as the upstream-failures.jsonl line's `kind` says it: an attempt's own
 * failure, the request's deadline passing, or the upstream dying after the first byte.
 */
type RouteFailure = FailureKind | 'deadline' | 'mid_stream';

/** Admission, one attempt, and delivery on one route. The slot is released on every path. */
async function tryRoute(rt: RouteRuntime, ex: ForwardRequest, deadlineSignal: DeadlineSignal, deadline: number, own: Record<string, string>, maxTokens: number | undefined): Promise<RouteOutcome> {
  if (rt.busyForMs() > 0) return { kind: 'busy', detail: `${rt.name} said busy` };
  const slot = await rt.admission.acquire(deadlineSignal, deadline - Date.now(), ex.decision.sequences);
  if (!slot.ok) {
    if (slot.why === 'aborted') return ex.clientSignal.aborted ? { kind: 'aborted' } : { kind: 'failure', detail: 'request deadline passed while queued', upstreamCaused: false, cuda: false, failure: 'deadline' };
    return { kind: 'busy', detail: `${rt.name} ${slot.why === 'queue_full' ? 'has every slot and queue place taken' : 'queue wait timed out'}` };
  }
  // The overall deadline bounds the search for an answer, not a stream already under way: it
  // is disarmed once a stream is committed to the client, after which only a stall
  // (stream_idle_timeout_ms) or the client leaving ends it.
  try {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { kind: 'failure', detail: 'request deadline passed', upstreamCaused: false, cuda: false, failure: 'deadline' };
    const headersTimeoutMs = Math.min(rt.config.timeout_ms, remaining);
    const call = ex.dialect?.forRoute(rt.config, maxTokens);
    const outcome: AttemptOutcome = await attempt({
      route: rt,
      path: rt.basePath + (call ? call.path : ex.upstreamPath),
      body: call ? call.body : upstreamBody(ex, rt.config.model, maxTokens),
      headersTimeoutMs,
      idleTimeoutMs: ex.policy.doc.server.stream_idle_timeout_ms,
      signal: deadlineSignal,
      clientSignal: ex.clientSignal,
      requestId: ex.requestId,
    });
    switch (outcome.kind) {
      case 'aborted':
        return outcome;
      case 'busy':
        rt.noteBusy((outcome.retryAfterS ?? 1) * 1000, isLoadingAnswer(outcome.detail), outcome.detail);
        return { kind: 'busy', detail: `${rt.name}: ${outcome.detail}` };
      case 'failure': {
        // The overall deadline is the router's limit, not the upstream's fault: whether it fired,
        // or cut this attempt's wait for headers below the route's own timeout_ms.
        const ours = !ex.clientSignal.aborted && (deadlineSignal.timedOut || (outcome.failure === 'timeout' && headersTimeoutMs < rt.config.timeout_ms));
        return { kind: 'failure', detail: `${rt.name}: ${outcome.detail}`, upstreamCaused: !ours, cuda: outcome.cuda, failure: outcome.failure };
      }
      default: {
        if (!ex.capture && outcome.kind === 'response' && isEventStream(outcome.headers)) {
          deadlineSignal.disarm();
          // A committed stream makes no further attempt: the client's text (as large as the
          // prompt) need not live as long as the stream does.
          ex.rawBody = undefined;
        }
        const delivery = await deliver(outcome, ex, rt, own, call ?? null);
        if (delivery.kind === 'retryable') {
          return { kind: 'failure', detail: `${rt.name}: ${delivery.detail}`, upstreamCaused: !deadlineSignal.timedOut, cuda: false, failure: 'reset' };
        }
        return { kind: 'delivered', delivery };
      }
    }
  } finally {
    slot.release();
  }
}

function attemptOf(route: string, o: RouteOutcome, since: number, clientGone: boolean, policy: CompiledPolicy): Attempt {
  const ms = Date.now() - since;
  if (o.kind === 'aborted' || clientGone) return { route, outcome: 'client_gone', ms };
  if (o.kind === 'delivered') return { route, outcome: o.delivery.upstreamError ? 'mid_stream' : 'ok', ms, status: o.delivery.status };
  return { route, outcome: o.kind === 'busy' ? 'busy' : 'outage', ms, detail: keepsBodyText(policy) ? o.detail : withoutBodyText(o.detail) };
}

/**
 * Whether an upstream's error body may be kept in the request's record (and so in requests.db):
 * it can quote the prompt, so only where the operator keeps prompt text anyway.
 */
function keepsBodyText(p: CompiledPolicy): boolean {
  return p.doc.logging.prompts || p.doc.request_log.store_payloads;
}

function noteFailure(rt: RouteRuntime, outcome: Extract<RouteOutcome, { kind: 'failure' }>, ex: ForwardRequest, deps: ForwardDeps, phase = 'before_first_byte'): void {
  const verdict = rt.noteFailure(outcome.detail);
  deps.metrics.upstreamFailures.inc({ route: rt.name, kind: outcome.cuda ? 'cuda' : outcome.failure });
  const ejection = verdict === 'counted' ? {} : { ejection: verdict === 'ejected' ? 'ejected' : 'capped: max_ejected_percent keeps it in service' };
  ex.log.failures.warn({ route: rt.name, kind: outcome.failure, cuda: outcome.cuda, phase, detail: ex.policy.doc.logging.prompts ? outcome.detail : withoutBodyText(outcome.detail), consecutive_failures: rt.health.consecutiveFailures, healthy: rt.health.healthy, ...ejection });
  if (outcome.cuda) deps.onCudaFault?.(rt.name);
}

/** The headers of SPEC §4 for a response served (or refused) at `route`. */
export function decisionHeaders(ex: Pick<ForwardRequest, 'requestId' | 'decision'>, route: string | null, reason: string, path: string[]): Record<string, string> {
  return {
    'x-homelab-route': route ?? '',
    'x-homelab-bucket': ex.decision.bucket,
    'x-homelab-reason': reason,
    'x-homelab-fallback-path': path.join('>'),
    'x-request-id': ex.requestId,
  };
}

function appendSkips(path: string[], skipped: Skip[]): void {
  for (const s of skipped) path.push(s.route);
}

function recordDecisionFallbacks(d: Decision, metrics: RouterMetrics): void {
  if (d.route === null) return;
  const kinds: Record<string, FallbackKind> = { image: 'image', size_medium: 'size', size_large: 'size' };
  const first = d.skipped[0];
  const kind: FallbackKind | undefined = first ? (first.why === 'drained' ? 'drain' : 'outage') : kinds[d.reason];
  if (kind && d.intended !== d.route) metrics.fallbacks.inc({ from: d.intended, to: d.route, kind });
}

function finalError(cause: Cause | null, decision: Decision, deadline: number, policy: CompiledPolicy): RouterError {
  const retryAfterS = retryAfterSeconds(cause?.rt, cause?.kind ?? 'outage', policy, Date.now());
  // What the client reads: the route and what went wrong, never the upstream's text or address.
  const detail = cause ? clientErrorDetail(cause.detail) : null;
  const who = decision.pinned ? `Route ${cause?.route ?? decision.route}` : 'Every route this request may use';
  if (Date.now() >= deadline) return new RouterError('upstream_unavailable', `No upstream answered within the request deadline (${detail ?? 'no attempt'}).`, { retryAfterS });
  if (cause?.kind === 'busy') return new RouterError('upstream_saturated', `${who} is busy (${detail}). Retry later.`, { retryAfterS });
  return new RouterError('upstream_unavailable', `${who} is unavailable (${detail ?? 'no route'}). Retry later.`, { retryAfterS });
}

/**
 * The client's own bytes with the route's model (and the clamped max_tokens, when the context
 * guard lowered it) when they can be edited, else the body re-serialised.
 */
function upstreamBody(ex: ForwardRequest, model: string, maxTokens: number | undefined): string {
  const values: Record<string, string | number> = { model };
  if (maxTokens !== undefined) for (const key of MAX_TOKEN_KEYS) if (typeof ex.body[key] === 'number') values[key] = maxTokens;
  return (ex.rawBody !== undefined ? withTopLevel(ex.rawBody, values) : undefined) ?? JSON.stringify({ ...ex.body, ...values });
}

/** SPEC §5 step 6: the max_tokens a route of `contextTokens` gets, when lower than the client's. */
function clampFor(ex: ForwardRequest, contextTokens: number): number | undefined {
  const guard = ex.policy.doc.context_guard ?? DEFAULT_CONTEXT_GUARD;
  return clampedMaxTokens(guard, contextTokens, ex.decision.estimatedTokens, ex.decision.requestedMaxTokens);
}
