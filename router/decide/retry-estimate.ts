// Retry-After for a client the router turns away: its own estimate of when the route will
// take requests again, in whole seconds from 1 to 60 (SPEC §5 step 10). Never an upstream's
// Retry-After as such: that is believed only up to health.max_busy_s, and a passing probe
// ends it sooner.
import type { CompiledPolicy } from '../policy/compile.ts';

export const MAX_RETRY_AFTER_S = 60;

/** What the estimate reads of a route's health (upstream/route-health.ts keeps more). */
export interface HealthTimes {
  down: boolean;
  busyUntil: number;
  ejectedUntil: number;
  lastProbeAt: number | null;
}

export interface RetryView {
  health: Readonly<HealthTimes>;
  config: { queue_timeout_ms: number };
}

export function retryAfterSeconds(rt: RetryView | undefined, kind: 'busy' | 'outage', policy: CompiledPolicy, now: number): number {
  const intervalMs = policy.doc.health.interval_s * 1000;
  let ms: number;
  if (rt === undefined) ms = intervalMs;
  else if (kind === 'busy') {
    // The upstream's own busy window, or (every slot and queue place taken) about one queue wait.
    ms = rt.health.busyUntil > now ? rt.health.busyUntil - now : rt.config.queue_timeout_ms;
  } else ms = backInMs(rt.health, intervalMs, now);
  return clampSeconds(ms / 1000);
}

/** When a route that is out (ejected, down, or just failed) may take requests again, in ms. */
export function backInMs(h: Readonly<HealthTimes>, intervalMs: number, now: number): number {
  // Ejected: until the ejection ends. Down or just failed: the next probe round is the
  // soonest it can be seen back.
  const nextProbe = h.lastProbeAt === null ? intervalMs : Math.max(0, h.lastProbeAt + intervalMs - now);
  const ejected = h.ejectedUntil > now ? h.ejectedUntil - now : 0;
  return h.down ? Math.max(nextProbe, ejected) : ejected > 0 ? ejected : nextProbe;
}

export function clampSeconds(s: number): number {
  if (!Number.isFinite(s)) return MAX_RETRY_AFTER_S;
  return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(s)));
}
