// Live state of every route: admission, health, drain flag and the connection pool.
//
// A route's runtime is two parts. What belongs to the upstream machine (admission, health,
// busy and ejection state, the drain flag) is kept for as long as the route keeps its name:
// a reload that changes any of its settings builds a new runtime (new config, new pool) on
// the same machine state, so requests admitted before the reload keep counting against
// `slots` and the upstream never sees more than `slots` requests from the router (SPEC §6).
// What belongs to one config (the pool, its URL) is replaced, and the old pool closes once
// its requests end.
//
// State is written only through the runtime's methods; readers get read-only views. Every
// change of a route's condition (healthy, down, busy, loading) is reported once to the
// listener given to RouteStates.
import { Pool } from 'undici';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { RouteConfig } from '../policy/types.ts';
import type { RouteStatus, StateView } from '../decide/chain.ts';
import { adapterFor } from './adapters.ts';
import { Admission, type SlotLimiter } from './admission.ts';
import { LocalDrains, type DrainStore } from './drains.ts';
import { mayEject } from './ejection-cap.ts';
import { backInMs } from '../decide/retry-estimate.ts';
import type { ProbeResult } from './probe.ts';
import { ProbeHistory, type ProbeRecord } from './probe-history.ts';
import {
  applyBusy,
  applyFailure,
  applyProbe,
  applyRecoveryStart,
  applySuccess,
  condition,
  freshHealth,
  nextChangeAt,
  settle,
  type FailureVerdict,
  type HealthRules,
  type HealthState,
  type RouteCondition,
} from './route-health.ts';

export type { HealthState, RouteCondition } from './route-health.ts';

/** One change of a route's condition, as logged. */
export interface RouteChange {
  route: string;
  from: RouteCondition;
  to: RouteCondition;
  /** What showed it: a probe, a request, a window running out, a recovery command starting. */
  cause: 'probe' | 'request' | 'timer' | 'recovery';
  /** The URL the health probe calls. */
  url: string;
  error: string | null;
  /** When a busy window or an ejection ends by itself (ISO), or null. */
  until: string | null;
  /** Set when the route came back: its admission ramps up over this many seconds. */
  slow_start_s?: number;
  /** Set when requests ejected it: ejections in a row. */
  ejections?: number;
}

/** What a route's machine state needs from the set of routes. */
interface Fleet {
  policy(): CompiledPolicy;
  /** The admission of a route's machine: local, or shared by replicas. */
  limiter(route: string, config: RouteConfig): SlotLimiter;
  drains: DrainStore;
  mayEject(route: string, now: number): boolean;
  changed(change: RouteChange): void;
}

export function healthRules(policy: CompiledPolicy): HealthRules {
  const h = policy.doc.health;
  return {
    unhealthyAfter: h.unhealthy_after,
    healthyAfter: h.healthy_after,
    intervalMs: h.interval_s * 1000,
    maxBusyMs: h.max_busy_s * 1000,
    ejectionBaseMs: h.ejection_base_s * 1000,
    ejectionMaxMs: h.ejection_max_s * 1000,
  };
}

/** The state of one upstream machine, shared by every runtime the route has had. */
class Machine {
  readonly admission: SlotLimiter;
  readonly health: HealthState = freshHealth();
  /** The last probes, for the web UI; carried over like the rest of the machine's state. */
  readonly probes = new ProbeHistory();
  probeUrl: string;
  #condition: RouteCondition = 'healthy';
  /** Down or loading since it was last healthy: slow start applies when it comes back. */
  #comingBack = false;
  #timer: NodeJS.Timeout | undefined;
  #disposed = false;

  constructor(
    readonly name: string,
    config: RouteConfig,
    readonly fleet: Fleet,
  ) {
    this.admission = fleet.limiter(name, config);
    this.probeUrl = adapterFor(config.runtime).healthUrl(config);
  }

  reconfigure(config: RouteConfig): void {
    this.admission.resize(config.slots, config.queue, config.queue_timeout_ms);
    this.probeUrl = adapterFor(config.runtime).healthUrl(config);
  }

  get rules(): HealthRules {
    return healthRules(this.fleet.policy());
  }

  /** After any change: report a new condition once, start slow start, arm the next timer. */
  after(cause: RouteChange['cause'], now = Date.now(), detail?: string): void {
    if (this.#disposed) return;
    const h = this.health;
    settle(h, now);
    const to = condition(h, now);
    const from = this.#condition;
    if (to !== from) {
      this.#condition = to;
      const change: RouteChange = { route: this.name, from, to, cause, url: this.probeUrl, error: to === 'healthy' ? null : (detail ?? h.lastError), until: untilOf(h, to, now) };
      if (to === 'down' || to === 'loading') this.#comingBack = true;
      if (h.ejectedUntil > now) change.ejections = h.ejections;
      if (to === 'healthy' && this.#comingBack) {
        this.#comingBack = false;
        const s = this.fleet.policy().doc.health.slow_start_s;
        if (s > 0) {
          this.admission.rampUp(s * 1000, now);
          change.slow_start_s = s;
        }
      }
      this.fleet.changed(change);
    }
    this.#arm(now);
  }

  #arm(now: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const at = nextChangeAt(this.health, now);
    if (at === null) return;
    this.#timer = setTimeout(() => this.after('timer'), Math.max(1, at - now + 1));
    this.#timer.unref();
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#timer);
    this.admission.dispose();
  }
}

function untilOf(h: HealthState, to: RouteCondition, now: number): string | null {
  const t = to === 'down' ? (h.ejectedUntil > now ? h.ejectedUntil : 0) : to === 'healthy' ? 0 : h.busyUntil;
  return t > 0 ? new Date(t).toISOString() : null;
}

export class RouteRuntime {
  readonly name: string;
  readonly config: RouteConfig;
  readonly fingerprint: string;
  readonly pool: Pool;
  /** The route URL's path without a trailing slash ('/v1'): upstream paths go below it. */
  readonly basePath: string;
  readonly #machine: Machine;

  constructor(name: string, config: RouteConfig, fleet: Fleet, machine?: Machine) {
    this.name = name;
    this.config = config;
    this.fingerprint = JSON.stringify(config);
    this.#machine = machine ?? new Machine(name, config, fleet);
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

  /** The runtime for `config` on the same machine state (a reload changed this route's settings). */
  successor(config: RouteConfig): RouteRuntime {
    this.#machine.reconfigure(config);
    return new RouteRuntime(this.name, config, this.#machine.fleet, this.#machine);
  }

  get admission(): SlotLimiter {
    return this.#machine.admission;
  }

  get health(): Readonly<HealthState> {
    return this.#machine.health;
  }

  get drained(): boolean {
    return this.#machine.fleet.drains.isDrained(this.name);
  }

  /** The URL the health probe calls. */
  get probeUrl(): string {
    return this.#machine.probeUrl;
  }

  setDrained(drained: boolean): void {
    this.#machine.fleet.drains.setDrained(this.name, drained);
  }

  /** Same as setDrained (kept for callers that assign). */
  set drained(drained: boolean) {
    this.setDrained(drained);
  }

  status(): RouteStatus {
    const h = this.#machine.health;
    // An ejection whose time is up ends here too, should its timer be late.
    if (h.ejectedUntil !== 0 && h.ejectedUntil <= Date.now()) this.#machine.after('timer');
    const drained = this.#machine.fleet.drains.isDrained(this.name);
    if (h.healthy) return { healthy: true, drained };
    return { healthy: false, drained, backInMs: backInMs(h, this.#machine.rules.intervalMs, Date.now()) };
  }

  /** ms left of an upstream's busy window (0 when not busy). */
  busyForMs(now = Date.now()): number {
    return Math.max(0, this.#machine.health.busyUntil - now);
  }

  /** ms left of an ejection (0 when not ejected). */
  ejectedForMs(now = Date.now()): number {
    return Math.max(0, this.#machine.health.ejectedUntil - now);
  }

  noteSuccess(): void {
    applySuccess(this.#machine.health, Date.now());
  }

  /** An upstream-caused request failure. */
  noteFailure(error: string): FailureVerdict {
    const m = this.#machine;
    const now = Date.now();
    const verdict = applyFailure(m.health, error, m.rules, now, () => m.fleet.mayEject(this.name, now));
    m.after('request', now);
    return verdict;
  }

  /** The upstream said busy (429, loading) for `ms`; believed for at most health.max_busy_s. */
  noteBusy(ms: number, loading = false, detail?: string): void {
    const m = this.#machine;
    const now = Date.now();
    applyBusy(m.health, ms, m.rules, now, loading);
    m.after('request', now, detail);
  }

  recordProbe(result: ProbeResult): void {
    const m = this.#machine;
    m.probes.add(result);
    applyProbe(m.health, result, m.rules);
    m.after('probe', Date.now(), result.error);
  }

  /** The probes of the last hour (at most PROBE_HISTORY_MAX), oldest first, without error text. */
  probeHistory(now = Date.now()): ProbeRecord[] {
    return this.#machine.probes.list(now);
  }

  /** A recovery command is about to run on this route's host: out of service until probes pass. */
  beginRecovery(why: string): void {
    const m = this.#machine;
    applyRecoveryStart(m.health, why, Date.now());
    m.after('recovery');
  }

  /** @internal the route is gone for good */
  dispose(): void {
    this.#machine.dispose();
  }
}

export interface RouteStatesOptions {
  /** Told once per change of a route's condition. */
  onChange?: (change: RouteChange) => void;
  /** Builds each route's admission (default: the local FIFO limiter). */
  limiter?: (route: string, config: RouteConfig) => SlotLimiter;
  /** Where drains are kept (default: in memory). */
  drains?: DrainStore;
}

function localLimiter(_route: string, config: RouteConfig): SlotLimiter {
  return new Admission(config.slots, config.queue, config.queue_timeout_ms);
}

export class RouteStates {
  #routes = new Map<string, RouteRuntime>();
  /** Routes a reload removed while they still had requests: a reload that brings one back reuses its state. */
  #retired = new Map<string, RouteRuntime>();
  #policy: CompiledPolicy;
  readonly #fleet: Fleet;
  /** The same object every time: decide() reads state through it once per request. */
  readonly view: StateView = (name) => this.#routes.get(name)?.status() ?? { healthy: false, drained: false };

  constructor(policy: CompiledPolicy, opts: RouteStatesOptions = {}) {
    this.#policy = policy;
    const onChange = opts.onChange;
    this.#fleet = {
      policy: () => this.#policy,
      limiter: opts.limiter ?? localLimiter,
      drains: opts.drains ?? new LocalDrains(),
      mayEject: (route, now) => mayEject(this.#policy, route, (r) => (this.#routes.get(r)?.ejectedForMs(now) ?? 0) > 0, this.#policy.doc.health.max_ejected_percent),
      changed: (change) => onChange?.(change),
    };
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
    this.#policy = policy;
    for (const [name, gone] of this.#retired) {
      if (gone.admission.inFlight + gone.admission.queued > 0) continue;
      gone.dispose();
      this.#retired.delete(name);
    }
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
      const gone = this.#retired.get(name);
      this.#retired.delete(name);
      if (old) {
        // Same machine, new settings: admission, health and drain carry over.
        next.set(name, old.successor(config));
        result.replaced.push(name);
        retire(old);
      } else if (gone && gone.admission.inFlight + gone.admission.queued > 0) {
        // Removed by an earlier reload while its requests ran, and back before they ended.
        next.set(name, gone.successor(config));
        result.added.push(name);
      } else {
        if (gone) gone.dispose();
        next.set(name, new RouteRuntime(name, config, this.#fleet));
        result.added.push(name);
      }
    }
    for (const [name, old] of this.#routes) {
      if (!next.has(name)) {
        result.removed.push(name);
        retire(old);
        if (old.admission.inFlight + old.admission.queued > 0) this.#retired.set(name, old);
        else old.dispose();
      }
    }
    this.#routes = next;
    return result;
  }

  async close(): Promise<void> {
    for (const r of [...this.all(), ...this.#retired.values()]) r.dispose();
    this.#retired.clear();
    await Promise.all(this.all().map((r) => r.pool.destroy().catch(() => undefined)));
  }
}

/** Pool.close() waits for requests already running on it, so in-flight streams finish. */
function retire(route: RouteRuntime): void {
  route.pool.close().catch(() => undefined);
}
