// What a route's health state becomes after each piece of evidence: a probe, a request that
// failed, succeeded or was refused as busy. Pure functions over one route's HealthState; the
// route runtime (route-state.ts) applies them, keeps the timers and reports the changes.
//
// Two verdicts keep a route out, and they end differently:
// - down: active probes failed unhealthy_after times in a row (or a recovery is under way);
//   healthy_after passing probes end it.
// - ejected: requests failed unhealthy_after times in a row (5xx, refused, reset, timeout).
//   It lasts ejection_base_s × n (n = ejections in a row), at most ejection_max_s, and ends
//   on its own. A passing probe ends only the first ejection of a run: once requests have
//   failed again after a probe let the route back, the probe is not trusted to speak for the
//   data path (reliability anchor S27) until the ejection has run its course.
// Busy (an upstream 429, a model still loading) is neither: the route is skipped like a full
// one for at most max_busy_s, and a passing probe ends it sooner.
import type { ProbeResult } from './probe.ts';

export interface HealthState {
  /** What routing reads: neither down nor ejected. */
  healthy: boolean;
  consecutiveFailures: number;
  consecutivePasses: number;
  lastError: string | null;
  lastProbeAt: number | null;
  latencyMs: number | null;
  /** Upstream said busy (429, loading) until this time; skipped like a full route until then. */
  busyUntil: number;
  /** The busy answer said it is still loading its model. */
  loading: boolean;
  /** Probes (or a recovery under way) say the upstream is down. */
  down: boolean;
  /** Ejected by failing requests until this time; 0 when not ejected. */
  ejectedUntil: number;
  /** Ejections in a row: the back-off multiplier. */
  ejections: number;
  /** When the last ejection ended (epoch ms); 0 when there was none. */
  lastEjectionEndAt: number;
}

export type RouteCondition = 'healthy' | 'down' | 'busy' | 'loading';

export interface HealthRules {
  unhealthyAfter: number;
  healthyAfter: number;
  intervalMs: number;
  maxBusyMs: number;
  ejectionBaseMs: number;
  ejectionMaxMs: number;
}

export function freshHealth(): HealthState {
  return { healthy: true, consecutiveFailures: 0, consecutivePasses: 0, lastError: null, lastProbeAt: null, latencyMs: null, busyUntil: 0, loading: false, down: false, ejectedUntil: 0, ejections: 0, lastEjectionEndAt: 0 };
}

export function condition(h: HealthState, now: number): RouteCondition {
  if (h.down || h.ejectedUntil > now) return 'down';
  if (h.busyUntil > now) return h.loading ? 'loading' : 'busy';
  return 'healthy';
}

/** Ends an ejection whose time is up, and recomputes `healthy`. */
export function settle(h: HealthState, now: number): void {
  if (h.ejectedUntil !== 0 && h.ejectedUntil <= now) endEjection(h, h.ejectedUntil);
  h.healthy = !h.down && h.ejectedUntil === 0;
}

function endEjection(h: HealthState, at: number): void {
  h.ejectedUntil = 0;
  h.lastEjectionEndAt = at;
}

/** How long the next ejection lasts, counting it (the count starts over after ejection_max_s in service). */
export function nextEjection(h: HealthState, r: HealthRules, now: number): { n: number; ms: number } {
  const fresh = h.lastEjectionEndAt === 0 || now - h.lastEjectionEndAt >= r.ejectionMaxMs;
  const n = (fresh ? 0 : h.ejections) + 1;
  return { n, ms: Math.min(r.ejectionBaseMs * n, r.ejectionMaxMs) };
}

export type FailureVerdict = 'counted' | 'ejected' | 'ejection_capped';

/**
 * A request failed for a reason that is the upstream's (never the client's or the router's).
 * `mayEject` answers whether the fallback chains can spare this route right now.
 */
export function applyFailure(h: HealthState, error: string, r: HealthRules, now: number, mayEject: () => boolean): FailureVerdict {
  settle(h, now);
  h.consecutiveFailures++;
  h.consecutivePasses = 0;
  h.lastError = error;
  if (h.consecutiveFailures < r.unhealthyAfter || h.ejectedUntil > now || r.ejectionBaseMs <= 0) return 'counted';
  if (!mayEject()) return 'ejection_capped';
  const next = nextEjection(h, r, now);
  h.ejections = next.n;
  h.ejectedUntil = now + next.ms;
  settle(h, now);
  return 'ejected';
}

export function applySuccess(h: HealthState, now: number): void {
  settle(h, now);
  h.consecutiveFailures = 0;
}

/** The upstream said busy for `ms` (its Retry-After, or a probe's "loading"); believed for at most max_busy_s. */
export function applyBusy(h: HealthState, ms: number, r: HealthRules, now: number, loading = false): void {
  settle(h, now);
  const until = now + Math.max(0, Math.min(ms, r.maxBusyMs));
  if (until > h.busyUntil) {
    h.busyUntil = until;
    h.loading = loading;
  }
}

/** One active probe's verdict. */
export function applyProbe(h: HealthState, result: ProbeResult, r: HealthRules): void {
  const now = result.at;
  settle(h, now);
  h.lastProbeAt = result.at;
  h.latencyMs = result.latencyMs;
  if (result.ok) {
    h.consecutivePasses++;
    h.consecutiveFailures = 0;
    // A passing probe ends a busy window at once, however long the upstream asked for.
    h.busyUntil = 0;
    h.loading = false;
    if (h.consecutivePasses >= r.healthyAfter) {
      h.down = false;
      if (h.ejectedUntil > now && h.ejections <= 1) endEjection(h, now);
    }
  } else if (result.busy) {
    // Full, or still loading: not ready, and not broken either.
    h.consecutivePasses = 0;
    h.consecutiveFailures = 0;
    applyBusy(h, r.intervalMs, r, now, result.loading);
  } else {
    h.consecutiveFailures++;
    h.consecutivePasses = 0;
    h.lastError = result.error ?? 'probe failed';
    if (h.consecutiveFailures >= r.unhealthyAfter) h.down = true;
  }
  settle(h, now);
}

/** A recovery command is about to run: down until probes pass again. */
export function applyRecoveryStart(h: HealthState, why: string, now: number): void {
  h.down = true;
  h.consecutivePasses = 0;
  h.lastError = why;
  settle(h, now);
}

/** The next time the condition changes by itself (a busy window or an ejection ending), or null. */
export function nextChangeAt(h: HealthState, now: number): number | null {
  const times = [h.busyUntil, h.ejectedUntil].filter((t) => t > now);
  return times.length === 0 ? null : Math.min(...times);
}
