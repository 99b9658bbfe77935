// Live state of every route: admission, health, drain flag and the connection pool.
// Reload keeps the state of a route whose settings did not change (SPEC §6); a changed or new
// route starts fresh (healthy, empty), and a removed route's pool closes once its requests end.
import { Pool } from 'undici';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { RouteConfig } from '../policy/types.ts';
import type { RouteStatus, StateView } from '../decide/chain.ts';
import { Admission } from './admission.ts';

export interface HealthState {
  healthy: boolean;
  consecutiveFailures: number;
  consecutivePasses: number;
  lastError: string | null;
  lastProbeAt: number | null;
  latencyMs: number | null;
  /** Upstream said busy (429, loading) until this time; skipped like a full route until then. */
  busyUntil: number;
}

export class RouteRuntime {
  readonly name: string;
  readonly config: RouteConfig;
  readonly fingerprint: string;
  readonly admission: Admission;
  readonly pool: Pool;
  /** The route URL's path without a trailing slash ('/v1'): upstream paths go below it. */
  readonly basePath: string;
  drained = false;
  health: HealthState = { healthy: true, consecutiveFailures: 0, consecutivePasses: 0, lastError: null, lastProbeAt: null, latencyMs: null, busyUntil: 0 };

  constructor(name: string, config: RouteConfig) {
    this.name = name;
    this.config = config;
    this.fingerprint = JSON.stringify(config);
    this.admission = new Admission(config.slots, config.queue, config.queue_timeout_ms);
    this.basePath = new URL(config.url).pathname.replace(/\/$/, '');
    // One connection per slot: admission never lets more requests through than that, so a
    // request never waits on the pool itself. No pipelining: a GPU answers one request per
    // connection at a time and a reset must not take a neighbour's request down with it.
    this.pool = new Pool(new URL(config.url).origin, {
      connections: config.slots,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      connectTimeout: Math.min(config.timeout_ms, 10_000),
    });
  }

  status(): RouteStatus {
    return { healthy: this.health.healthy, drained: this.drained };
  }
}


export class RouteStates {
  #routes = new Map<string, RouteRuntime>();
  /** The same object every time: decide() reads state through it once per request. */
  readonly view: StateView = (name) => this.#routes.get(name)?.status() ?? { healthy: false, drained: false };

  constructor(policy: CompiledPolicy) {
    this.sync(policy);
  }

  get(name: string): RouteRuntime | undefined {
    return this.#routes.get(name);
  }

  all(): RouteRuntime[] {
    return [...this.#routes.values()];
  }

  /** Applies a new policy; returns the routes that were replaced, added or removed. */
  sync(policy: CompiledPolicy): { kept: string[]; replaced: string[]; added: string[]; removed: string[] } {
    const next = new Map<string, RouteRuntime>();
    const result = { kept: [] as string[], replaced: [] as string[], added: [] as string[], removed: [] as string[] };
    for (const name of policy.routeNames) {
      const config = policy.route(name);
      const old = this.#routes.get(name);
      if (old && old.fingerprint === JSON.stringify(config)) {
        next.set(name, old);
        result.kept.push(name);
        continue;
      }
      const fresh = new RouteRuntime(name, config);
      if (old) {
        fresh.drained = old.drained; // a drain is the operator's intent; it outlives a settings change
        result.replaced.push(name);
        retire(old);
      } else result.added.push(name);
      next.set(name, fresh);
    }
    for (const [name, old] of this.#routes) {
      if (!next.has(name)) {
        result.removed.push(name);
        retire(old);
      }
    }
    this.#routes = next;
    return result;
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((r) => r.pool.destroy().catch(() => undefined)));
  }
}

/** Pool.close() waits for requests already running on it, so in-flight streams finish. */
function retire(route: RouteRuntime): void {
  route.pool.close().catch(() => undefined);
}
