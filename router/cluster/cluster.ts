// A replica's membership of the cluster (SPEC §14): the Redis link, the route slots it shares,
// the shared drains, the lock that lets one replica at a time probe and run the watchdog, and
// the health results that replica publishes. Everything here degrades to the replica's own
// view when Redis is away, and rejoins when it returns.
import type { ClusterConfig } from '../policy/types.ts';
import { clusterKeys, type ClusterKeys } from './keys.ts';
import { LeaderLock } from './leader-lock.ts';
import { RedisLink } from './link.ts';
import { SharedAdmission } from './shared-admission.ts';
import { SharedDrains, type DrainEvent } from './shared-drains.ts';

export interface HealthEvent {
  type: 'health';
  route: string;
  by: string;
  healthy: boolean;
  consecutive_failures: number;
  last_error: string | null;
  last_probe_at: number | null;
  latency_ms: number | null;
  busy_until: number;
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

export class Cluster {
  readonly config: ClusterConfig;
  readonly link: RedisLink;
  readonly keys: ClusterKeys;
  readonly drains: SharedDrains;
  /** Held by the one replica that probes the upstreams and runs the watchdog. */
  readonly leader: LeaderLock;
  readonly #admissions = new Set<SharedAdmission>();
  readonly #byRoute = new Map<string, SharedAdmission>();
  readonly #log: ClusterLog;
  #healthListeners: ((e: HealthEvent) => void)[] = [];
  #stateListeners: ((s: ClusterStatus) => void)[] = [];
  #since = Date.now();
  #timers: NodeJS.Timeout[] = [];

  constructor(config: ClusterConfig, log: ClusterLog) {
    this.config = config;
    this.#log = log;
    this.keys = clusterKeys(config.key_prefix ?? 'hlr:');
    this.link = new RedisLink({ url: config.redis_url, commandTimeoutMs: config.command_timeout_ms });
    this.drains = new SharedDrains(this.link, this.keys, config.replica_id);
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

  onHealth(listener: (e: HealthEvent) => void): void {
    this.#healthListeners.push(listener);
  }

  async start(): Promise<void> {
    await this.link.start();
    await this.link.subscriber
      .subscribe([this.keys.released, this.keys.events], (message: string, channel: string) => this.#onMessage(channel, message))
      .catch(() => undefined);
    await this.drains.resync();
    await Promise.all([...this.#admissions].map((a) => a.heartbeat()));
    this.leader.start();
    const every = (ms: number, fn: () => unknown) => {
      const t = setInterval(() => void fn(), ms);
      t.unref();
      this.#timers.push(t);
    };
    every(Math.max(50, Math.floor(this.config.lease_ttl_ms / 3)), () => Promise.all([...this.#admissions].map((a) => a.heartbeat())));
    every(RESYNC_MS, () => this.drains.resync());
  }

  /** The slot limiter of one route: shared through Redis, with the local share as fallback. */
  admission(route: string, slots: number, queue: number, queueTimeoutMs: number): SharedAdmission {
    const a = new SharedAdmission({ route, slots, queue, queueTimeoutMs, replicaId: this.config.replica_id, replicas: this.config.replicas, leaseTtlMs: this.config.lease_ttl_ms }, this.link, this.keys);
    this.#admissions.add(a);
    this.#byRoute.set(route, a);
    if (this.link.up) void a.heartbeat();
    return a;
  }

  /** A route's old limiter after a reload: it keeps its leases until its requests end. */
  retire(a: SharedAdmission): void {
    a.close();
    this.#admissions.delete(a);
  }

  /** Tells the other replicas what this one learned of a route's health. */
  publishHealth(e: Omit<HealthEvent, 'type' | 'by'>): void {
    if (!this.link.up) return;
    const event: HealthEvent = { type: 'health', by: this.config.replica_id, ...e };
    const json = JSON.stringify(event);
    this.link.client
      .sendCommand(['HSET', this.keys.health, e.route, json])
      .then(() => this.link.client.sendCommand(['PUBLISH', this.keys.events, json]))
      .catch((err) => this.link.noteFailure(err));
  }

  /** The health each route last had anywhere in the cluster (a replica that starts reads it). */
  async sharedHealth(): Promise<HealthEvent[]> {
    if (!this.link.up) return [];
    try {
      const all = (await this.link.client.sendCommand(['HVALS', this.keys.health])) as string[];
      return all.map((s) => JSON.parse(s) as HealthEvent);
    } catch (err) {
      this.link.noteFailure(err);
      return [];
    }
  }

  #onMessage(channel: string, message: string): void {
    if (channel === this.keys.released) {
      // A slot came free on some replica: waiters for that route here may take it.
      for (const a of this.#admissions) if (a === this.#byRoute.get(message)) a.pump();
      return;
    }
    let e: DrainEvent | HealthEvent;
    try {
      e = JSON.parse(message) as DrainEvent | HealthEvent;
    } catch {
      return;
    }
    if (e.type === 'drain') this.drains.onEvent(e);
    else if (e.type === 'health' && e.by !== this.config.replica_id) for (const l of this.#healthListeners) l(e);
  }

  async #rejoin(): Promise<void> {
    await this.drains.resync();
    for (const a of this.#admissions) await a.rejoin();
    await this.leader.tick();
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    for (const a of this.#admissions) a.close();
    await this.leader.stop();
    await this.link.close();
  }
}
