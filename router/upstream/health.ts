// Active probes of every route on health.interval_s. What a probe's verdict does to a
// route is decided in route-health.ts and applied by the route's runtime (route-state.ts).
import type { CompiledPolicy } from '../policy/compile.ts';
import { probeRoute, type ProbeResult } from './probe.ts';
import type { RouteRuntime, RouteStates } from './route-state.ts';

export type ProbeFn = (route: RouteRuntime, timeoutMs: number) => Promise<ProbeResult>;

export class HealthChecker {
  readonly #states: RouteStates;
  readonly #policy: () => CompiledPolicy;
  readonly #probe: ProbeFn;
  readonly #onProbe: ((route: RouteRuntime, result: ProbeResult) => void) | undefined;
  readonly #mayProbe: () => boolean;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(
    states: RouteStates,
    policy: () => CompiledPolicy,
    opts: {
      probe?: ProbeFn;
      onProbe?: (route: RouteRuntime, result: ProbeResult) => void;
      /** False while another replica probes for the cluster (its results arrive through Redis). */
      mayProbe?: () => boolean;
    } = {},
  ) {
    this.#states = states;
    this.#policy = policy;
    this.#probe = opts.probe ?? ((route, timeoutMs) => probeRoute(route.config, timeoutMs));
    this.#onProbe = opts.onProbe;
    this.#mayProbe = opts.mayProbe ?? (() => true);
  }

  /** Probes every route once; concurrent callers share the round in progress. */
  probeAll(): Promise<void> {
    this.#running ??= this.#round().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #round(): Promise<void> {
    if (!this.#mayProbe()) return;
    const policy = this.#policy();
    await Promise.all(
      this.#states.all().map(async (route) => {
        const result = await this.#probe(route, policy.doc.health.timeout_ms);
        route.recordProbe(result);
        this.#onProbe?.(route, result);
      }),
    );
  }

  /** Probe now, then every health.interval_s (read afresh each time, so reloads apply). */
  start(): void {
    if (this.#timer) return;
    const tick = () => {
      void this.probeAll().finally(() => {
        if (this.#timer) this.#timer = setTimeout(tick, this.#policy().doc.health.interval_s * 1000).unref();
      });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
