// Route health: passive marking from real traffic, active probes on health.interval_s.
// Only upstream-caused failures count (refused, reset, timeout before first byte, 5xx); a
// client's disconnect, a 4xx or the router's own overflow never do (Envoy #25487).
import type { CompiledPolicy } from '../policy/compile.ts';
import { probeRoute, type ProbeResult } from './probe.ts';
import type { RouteRuntime, RouteStates } from './route-state.ts';

export interface HealthThresholds {
  unhealthyAfter: number;
  healthyAfter: number;
}

export function thresholds(policy: CompiledPolicy): HealthThresholds {
  return { unhealthyAfter: policy.policy.health.unhealthy_after, healthyAfter: policy.policy.health.healthy_after };
}

export function recordFailure(route: RouteRuntime, error: string, t: HealthThresholds): void {
  const h = route.health;
  h.consecutiveFailures++;
  h.consecutivePasses = 0;
  h.lastError = error;
  if (h.consecutiveFailures >= t.unhealthyAfter) h.healthy = false;
}

export function recordSuccess(route: RouteRuntime): void {
  route.health.consecutiveFailures = 0;
}

/** An upstream 429 / "loading": skip the route for `ms` without calling it broken. */
export function recordBusy(route: RouteRuntime, ms: number, now = Date.now()): void {
  route.health.busyUntil = Math.max(route.health.busyUntil, now + ms);
}

/**
 * One active probe's verdict. A busy answer (full, or a model still loading) skips the route
 * until the next probe without counting against it: it is not ready, and not broken either.
 */
export function recordProbe(route: RouteRuntime, result: ProbeResult, t: HealthThresholds & { intervalMs: number }): void {
  const h = route.health;
  h.lastProbeAt = result.at;
  h.latencyMs = result.latencyMs;
  if (result.ok) {
    h.consecutivePasses++;
    h.consecutiveFailures = 0;
    if (!h.healthy && h.consecutivePasses >= t.healthyAfter) h.healthy = true;
    return;
  }
  if (result.busy) {
    h.consecutivePasses = 0;
    h.consecutiveFailures = 0;
    recordBusy(route, t.intervalMs, result.at);
    return;
  }
  recordFailure(route, result.error ?? 'probe failed', t);
}

export type ProbeFn = (route: RouteRuntime, timeoutMs: number) => Promise<ProbeResult>;

export class HealthChecker {
  readonly #states: RouteStates;
  readonly #policy: () => CompiledPolicy;
  readonly #probe: ProbeFn;
  readonly #onProbe: ((route: RouteRuntime, result: ProbeResult) => void) | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(states: RouteStates, policy: () => CompiledPolicy, opts: { probe?: ProbeFn; onProbe?: (route: RouteRuntime, result: ProbeResult) => void } = {}) {
    this.#states = states;
    this.#policy = policy;
    this.#probe = opts.probe ?? ((route, timeoutMs) => probeRoute(route.config, timeoutMs));
    this.#onProbe = opts.onProbe;
  }

  /** Probes every route once; concurrent callers share the round in progress. */
  probeAll(): Promise<void> {
    this.#running ??= this.#round().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #round(): Promise<void> {
    const policy = this.#policy();
    const t = { ...thresholds(policy), intervalMs: policy.policy.health.interval_s * 1000 };
    await Promise.all(
      this.#states.all().map(async (route) => {
        const result = await this.#probe(route, policy.policy.health.timeout_ms);
        recordProbe(route, result, t);
        this.#onProbe?.(route, result);
      }),
    );
  }

  /** Probe now, then every health.interval_s (read afresh each time, so reloads apply). */
  start(): void {
    if (this.#timer) return;
    const tick = () => {
      void this.probeAll().finally(() => {
        if (this.#timer) this.#timer = setTimeout(tick, this.#policy().policy.health.interval_s * 1000).unref();
      });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
