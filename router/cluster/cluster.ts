// A replica's membership of the cluster (SPEC §14): the Redis link, the route slots it shares,
// the shared drains, the lock that lets one replica at a time probe and run the watchdog, and
// the health results that replica publishes. Everything here degrades to the replica's own
// view when Redis is away, and rejoins when it returns.
import type { RouteConfig } from '../policy/types.ts';
import type { ReplicaConfig } from './replica-config.ts';
import type { SlotLimiter } from '../upstream/admission.ts';
import type { ProbeResult } from '../upstream/probe.ts';
import { clusterKeys, type ClusterKeys } from './keys.ts';
import { LeaderLock } from './leader-lock.ts';
import { RedisLink } from './link.ts';
import { SharedAdmission } from './shared-admission.ts';
import { SharedDrains, type DrainEvent } from './shared-drains.ts';
import { SharedKeyLimits } from './shared-key-limits.ts';
import { SharedKeys, type KeyEvent } from './shared-keys.ts';
import type { MirroredKeys } from '../keys/service.ts';
import type { LocalKeyLimits } from '../keys/limits.ts';

/** A probe's result, published by the replica that probes so the others apply the same one. */
export interface ProbeEvent {
  type: 'probe';
  route: string;
  by: string;
  result: ProbeResult;
}

export interface ClusterStatus {
  replica_id: string;
  redis: 'up' | 'down';
  /** shared: slots counted in Redis; local: each route's local share only. */
  mode: 'shared' | 'local';
  since: string;
  reason: string | null;
  /** This replica probes and runs the watchdog now. */
  leader: boolean;
  replicas: number;
}

export interface ClusterLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const RESYNC_MS = 5000;

export type { ReplicaConfig } from './replica-config.ts';

export class Cluster {
  readonly config: ReplicaConfig;
  readonly link: RedisLink;
  readonly keys: ClusterKeys;
  readonly drains: SharedDrains;
  /** API keys made at run time, mirrored between the replicas' keys.db. */
  readonly sharedKeys: SharedKeys;
  /** Held by the one replica that probes the upstreams and runs the watchdog. */
  readonly leader: LeaderLock;
  readonly #admissions = new Set<SharedAdmission>();
  readonly #byRoute = new Map<string, SharedAdmission>();
  #keyLimits: SharedKeyLimits | undefined;
  readonly #log: ClusterLog;
  #probeListeners: ((route: string, result: ProbeResult) => void)[] = [];
  #stateListeners: ((s: ClusterStatus) => void)[] = [];
  #since = Date.now();
  #timers: NodeJS.Timeout[] = [];

  readonly #maxRequestMs: (() => number) | undefined;

  /** `maxRequestMs`: the longest a request can hold a slot (server.request_timeout_ms). */
  constructor(config: ReplicaConfig, log: ClusterLog, maxRequestMs?: () => number) {
    this.config = config;
    this.#maxRequestMs = maxRequestMs;
    this.#log = log;
    this.keys = clusterKeys(config.key_prefix ?? 'hlr:');
    this.link = new RedisLink({ url: config.redis_url, commandTimeoutMs: config.command_timeout_ms });
    this.drains = new SharedDrains(this.link, this.keys, config.replica_id);
    this.sharedKeys = new SharedKeys(this.link, this.keys, config.replica_id);
    this.leader = new LeaderLock(this.link, this.keys.lock('probes'), config.replica_id, config.lease_ttl_ms);
    this.link.onChange((up, reason) => {
      this.#since = Date.now();
      const status = this.status;
      // One line per change, not per failed command.
      if (up) this.#log.info({ cluster: status }, `cluster: Redis reachable again; replica ${config.replica_id} shares slots, drains and limits through it`);
      else this.#log.warn({ cluster: status, reason }, `cluster: Redis unreachable (${reason}); replica ${config.replica_id} admits on its local share of each route's slots until it returns`);
      if (up) void this.#rejoin();
      for (const l of this.#stateListeners) l(status);
    });
    this.link.onErrorReply((err) => this.#log.warn({ err: err.message }, 'cluster: Redis refused a command (a bug in homelab-router; shared state may be off until it is fixed)'));
    this.leader.onChange((held) => this.#log.info({ replica: config.replica_id, held }, held ? 'cluster: this replica now probes the upstreams and runs the watchdog' : 'cluster: this replica no longer probes or runs the watchdog'));
  }

  get status(): ClusterStatus {
    const up = this.link.up;
    return {
      replica_id: this.config.replica_id,
      redis: up ? 'up' : 'down',
      mode: up ? 'shared' : 'local',
      since: new Date(this.#since).toISOString(),
      reason: up ? null : this.link.reason,
      leader: this.leader.held,
      replicas: this.config.replicas,
    };
  }

  onStatusChange(listener: (s: ClusterStatus) => void): void {
    this.#stateListeners.push(listener);
  }

  /** Probe results published by the replica that probes. */
  onProbe(listener: (route: string, result: ProbeResult) => void): void {
    this.#probeListeners.push(listener);
  }

  /** This replica probes now: it holds the lock, or Redis is away and each replica probes for itself. */
  mayProbe(): boolean {
    return this.leader.held || !this.link.up;
  }

  /** Why this replica's watchdog must not act now, or null when it may. */
  watchdogBlocked(): string | null {
    if (!this.link.up) return 'Redis is unreachable: no replica can be sure it is the only one acting, so none restarts a GPU server until it returns';
    return this.leader.held ? null : 'another replica holds the watchdog lock';
  }

  async start(): Promise<void> {
    await this.link.start();
    await this.link.subscriber
      .subscribe([this.keys.released, this.keys.events], (message: string, channel: string) => this.#onMessage(channel, message))
      .catch(() => undefined);
    await this.drains.resync();
    await this.sharedKeys.resync();
    await Promise.all([...this.#admissions].map((a) => a.heartbeat()));
    this.leader.start();
    const every = (ms: number, fn: () => unknown) => {
      const t = setInterval(() => void fn(), ms);
      t.unref();
      this.#timers.push(t);
    };
    every(Math.max(50, Math.floor(this.config.lease_ttl_ms / 3)), () => Promise.all([...[...this.#admissions].map((a) => a.heartbeat()), this.#keyLimits?.heartbeat()]));
    every(RESYNC_MS, () => Promise.all([this.drains.resync(), this.sharedKeys.resync()]));
  }

  /** The slot limiter of one route: shared through Redis, with the local share as fallback. */
  readonly limiter = (route: string, config: RouteConfig): SlotLimiter => {
    const a: SharedAdmission = new SharedAdmission(
      {
        route,
        slots: config.slots,
        queue: config.queue,
        queueTimeoutMs: config.queue_timeout_ms,
        replicaId: this.config.replica_id,
        replicas: this.config.replicas,
        leaseTtlMs: this.config.lease_ttl_ms,
        ...(this.#maxRequestMs ? { maxRequestMs: this.#maxRequestMs } : {}),
        onDispose: () => {
          this.#admissions.delete(a);
          if (this.#byRoute.get(route) === a) this.#byRoute.delete(route);
        },
      },
      this.link,
      this.keys,
    );
    this.#admissions.add(a);
    this.#byRoute.set(route, a);
    if (this.link.up) void a.heartbeat();
    return a;
  };

  /** Per-key limits counted in Redis, with the local store as the fallback while it is away. */
  readonly keyLimits = (local: LocalKeyLimits): SharedKeyLimits => {
    this.#keyLimits = new SharedKeyLimits(local, this.link, this.keys, { replicaId: this.config.replica_id, replicas: this.config.replicas, leaseTtlMs: this.config.lease_ttl_ms });
    return this.#keyLimits;
  };

  /** Keeps the keys made at run time in step with the other replicas (read at start). */
  mirrorKeys(store: MirroredKeys): void {
    this.sharedKeys.attach(store);
  }

  /** Lab-wide in-flight of a route as Redis last said, and this replica's share (admin view). */
  routeView(route: string): { lab_in_flight: number | null; local_share: number } | null {
    const a = this.#byRoute.get(route);
    return a ? { lab_in_flight: this.link.up ? a.labInFlight : null, local_share: a.share } : null;
  }

  /** Tells the other replicas what this replica's probe found (only the prober publishes). */
  publishProbe(route: string, result: ProbeResult): void {
    if (!this.link.up || !this.leader.held) return;
    const event: ProbeEvent = { type: 'probe', route, by: this.config.replica_id, result };
    const json = JSON.stringify(event);
    this.link.client
      .sendCommand(['HSET', this.keys.health, route, json])
      .then(() => this.link.client.sendCommand(['PUBLISH', this.keys.events, json]))
      .catch((err) => this.link.noteFailure(err));
  }

  /** The last probe result of each route anywhere in the cluster (a replica that starts reads them). */
  async lastProbes(): Promise<ProbeEvent[]> {
    if (!this.link.up) return [];
    try {
      const all = (await this.link.client.sendCommand(['HVALS', this.keys.health])) as string[];
      return all.map((s) => JSON.parse(s) as ProbeEvent);
    } catch (err) {
      this.link.noteFailure(err);
      return [];
    }
  }

  #onMessage(channel: string, message: string): void {
    if (channel === this.keys.released) {
      // A slot came free on some replica: waiters for that route here may take it.
      this.#byRoute.get(message)?.pump();
      return;
    }
    let e: DrainEvent | ProbeEvent | KeyEvent;
    try {
      e = JSON.parse(message) as DrainEvent | ProbeEvent | KeyEvent;
    } catch {
      return;
    }
    if (e.type === 'drain') this.drains.onEvent(e);
    else if (e.type === 'key') this.sharedKeys.onEvent(e);
    else if (e.type === 'probe' && e.by !== this.config.replica_id) for (const l of this.#probeListeners) l(e.route, e.result);
  }

  async #rejoin(): Promise<void> {
    await this.drains.resync();
    await this.sharedKeys.resync();
    for (const a of this.#admissions) await a.rejoin();
    await this.leader.tick();
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    for (const a of this.#admissions) a.dispose();
    await this.leader.stop();
    await this.link.close();
  }
}
