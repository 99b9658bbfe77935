// Admission to one route shared by every replica: a slot is a lease in Redis (scripts.ts), so
// the upstream never sees more than `slots` requests from all routers together. Waiting stays
// local: each replica keeps its own bounded FIFO queue and retries the head when a slot comes
// free anywhere (pub/sub), when its own request ends, or every `pollMs` at the latest.
//
// When Redis cannot be reached the replica admits on its local share alone,
// floor(slots / replicas), counting every request it has running; when Redis returns it
// registers those requests as leases again before it admits more.
import { randomBytes } from 'node:crypto';
import { onAbort, rampedLimit, type AbortSource, type AcquireResult, type Release, type SlotLimiter } from '../upstream/admission.ts';
import type { ClusterKeys } from './keys.ts';
import type { RedisLink } from './link.ts';
import { runScript } from './run-script.ts';
import { ACQUIRE, COUNT, HEARTBEAT, RELEASE } from './scripts.ts';

export interface SharedAdmissionOptions {
  route: string;
  slots: number;
  queue: number;
  queueTimeoutMs: number;
  replicaId: string;
  /** How many replicas share the route: sizes the local share while Redis is away. */
  replicas: number;
  leaseTtlMs: number;
  pollMs?: number;
  /** Told when the route's machine state is gone (a reload removed the route). */
  onDispose?: () => void;
  /** The longest a request can hold a slot (server.request_timeout_ms): how long a cut holds back borrowed slots. */
  maxRequestMs?: () => number;
}

interface Lease {
  weight: number;
  /** Registered in Redis (false while admitted on the local share). */
  shared: boolean;
}

interface Waiter {
  weight: number;
  settled: boolean;
  grant(release: Release): void;
}

/** The slots a replica may fill on its own while Redis is away. */
export function localShare(slots: number, replicas: number): number {
  return Math.floor(slots / Math.max(1, replicas));
}

export class SharedAdmission implements SlotLimiter {
  #slots: number;
  #queueLimit: number;
  #queueTimeoutMs: number;
  #share: number;
  /** Slow start on this replica (each replica ramps its own admissions). */
  #ramp: { from: number; until: number } | null = null;
  #rampTimer: NodeJS.Timeout | undefined;
  readonly #o: SharedAdmissionOptions;
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #prefix = randomBytes(6).toString('base64url');
  #seq = 0;
  #inFlight = 0;
  #leases = new Map<string, Lease>();
  #waiters: Waiter[] = [];
  #pumping = false;
  #poll: NodeJS.Timeout | undefined;
  /** Lab-wide in-flight as Redis last said (null before the first count or while away). */
  labInFlight: number | null = null;
  /** Requests other replicas held beyond their share, as Redis last said (acquire, heartbeat). */
  #othersExcess = 0;
  /** Since Redis became unreachable (noticed here): when, and the others' excess then. */
  #cut: { at: number; excess: number } | null = null;

  constructor(opts: SharedAdmissionOptions, link: RedisLink, keys: ClusterKeys) {
    this.#o = opts;
    this.#link = link;
    this.#keys = keys;
    this.#slots = opts.slots;
    this.#queueLimit = opts.queue;
    this.#queueTimeoutMs = opts.queueTimeoutMs;
    this.#share = localShare(opts.slots, opts.replicas);
  }

  get slots(): number {
    return this.#slots;
  }

  get queueLimit(): number {
    return this.#queueLimit;
  }

  get queueTimeoutMs(): number {
    return this.#queueTimeoutMs;
  }

  /** This replica's slots while Redis is away. */
  get share(): number {
    return this.#share;
  }

  /** What this replica may have in flight now: all slots (Redis decides) or its local limit, either under slow start. */
  get limit(): number {
    return rampedLimit(this.#link.up ? this.#slots : this.#localLimit(), this.#ramp, Date.now());
  }

  /**
   * While Redis is away: the share, less the slots other replicas had borrowed beyond their
   * own shares when it went (they may still be running, and those replicas count them against
   * nothing), until every request admitted before the cut has ended (maxRequestMs).
   */
  #localLimit(now = Date.now()): number {
    if (this.#link.up) {
      this.#cut = null;
      return this.#share;
    }
    this.#cut ??= { at: now, excess: this.#othersExcess };
    const holdMs = this.#o.maxRequestMs?.() ?? 0;
    if (this.#cut.excess === 0 || now >= this.#cut.at + holdMs) return this.#share;
    return Math.max(0, this.#share - this.#cut.excess);
  }

  resize(slots: number, queueLimit: number, queueTimeoutMs: number): void {
    this.#slots = slots;
    this.#queueLimit = queueLimit;
    this.#queueTimeoutMs = queueTimeoutMs;
    this.#share = localShare(slots, this.#o.replicas);
    this.pump();
  }

  rampUp(ms: number, now = Date.now()): void {
    clearInterval(this.#rampTimer);
    this.#rampTimer = undefined;
    this.#ramp = ms > 0 && this.#slots > 1 ? { from: now, until: now + ms } : null;
    if (this.#ramp) {
      this.#rampTimer = setInterval(() => {
        if (this.#ramp && Date.now() >= this.#ramp.until) {
          this.#ramp = null;
          clearInterval(this.#rampTimer);
          this.#rampTimer = undefined;
        }
        this.pump();
      }, Math.max(10, Math.ceil(ms / this.#slots)));
      this.#rampTimer.unref();
    }
    this.pump();
  }

  /** Only from the local share, and only while Redis is away: a shared slot needs a round trip. */
  tryAcquire(weight = 1): Release | null {
    if (this.#link.up || this.#waiters.length > 0) return null;
    const w = this.#clamp(weight);
    if (this.#inFlight + w > this.limit) return null;
    this.#inFlight += w;
    const id = `${this.#o.replicaId}|${this.#prefix}.${++this.#seq}`;
    this.#leases.set(id, { weight: w, shared: false });
    return this.#releaser(id);
  }

  #clamp(weight: number): number {
    return Math.max(1, Math.min(this.#slots, Math.floor(weight)));
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#waiters.length;
  }

  get saturated(): boolean {
    return this.labInFlight !== null ? this.labInFlight >= this.#slots : this.#inFlight >= this.limit;
  }

  /** How this replica admits now. */
  get mode(): 'shared' | 'local' {
    return this.#link.up ? 'shared' : 'local';
  }

  acquire(signal: AbortSource, maxWaitMs = this.#queueTimeoutMs, weight = 1): Promise<AcquireResult> | AcquireResult {
    if (signal.aborted) return { ok: false, why: 'aborted' };
    const w = this.#clamp(weight);
    if (this.#waiters.length === 0) return this.#takeOrWait(signal, maxWaitMs, w);
    return this.#wait(signal, maxWaitMs, w);
  }

  async #takeOrWait(signal: AbortSource, maxWaitMs: number, w: number): Promise<AcquireResult> {
    const release = await this.#take(w);
    if (release) {
      if (!signal.aborted) return { ok: true, release, waitedMs: 0 };
      release();
      return { ok: false, why: 'aborted' };
    }
    return this.#wait(signal, maxWaitMs, w);
  }

  #wait(signal: AbortSource, maxWaitMs: number, w: number): Promise<AcquireResult> | AcquireResult {
    if (signal.aborted) return { ok: false, why: 'aborted' };
    const waitMs = Math.min(this.#queueTimeoutMs, maxWaitMs);
    if (this.#waiters.length >= this.#queueLimit) return { ok: false, why: 'queue_full' };
    if (waitMs <= 0) return { ok: false, why: 'queue_timeout' };
    const started = Date.now();
    return new Promise<AcquireResult>((resolve) => {
      const waiter: Waiter = {
        weight: w,
        settled: false,
        grant: (release) => finish({ ok: true, release, waitedMs: Date.now() - started }),
      };
      const finish = (result: AcquireResult) => {
        if (waiter.settled) return;
        waiter.settled = true;
        clearTimeout(timer);
        stopListening();
        const i = this.#waiters.indexOf(waiter);
        if (i !== -1) this.#waiters.splice(i, 1);
        this.#schedulePoll();
        resolve(result);
      };
      const timer = setTimeout(() => finish({ ok: false, why: 'queue_timeout' }), waitMs);
      const stopListening = onAbort(signal, () => finish({ ok: false, why: 'aborted' }));
      this.#waiters.push(waiter);
      this.#schedulePoll();
    });
  }

  /** A slot now, from Redis or (while it is away) the local share; null when full. */
  async #take(w: number): Promise<Release | null> {
    const id = `${this.#o.replicaId}|${this.#prefix}.${++this.#seq}`;
    // Counted before the round trip, so the local share is never overshot by requests that
    // arrive while one is in flight; undone when the answer is no.
    this.#inFlight += w;
    if (this.#inFlight > this.limit && this.#inFlight > w) {
      // Slow start, or the share while Redis is away, already used by this replica.
      this.#inFlight -= w;
      return null;
    }
    let shared = false;
    if (this.#link.up) {
      try {
        const r = (await this.#acquireScript(id, w, false)) as unknown[];
        this.#othersExcess = Number(r[1] ?? 0);
        shared = Number(r[0]) === 1;
        if (!shared) {
          this.#inFlight -= w;
          return null;
        }
      } catch (err) {
        this.#link.noteFailure(err);
      }
    }
    if (!shared && this.#inFlight > this.#localLimit()) {
      this.#inFlight -= w;
      return null;
    }
    this.#leases.set(id, { weight: w, shared });
    return this.#releaser(id);
  }

  #acquireScript(id: string, w: number, force: boolean): Promise<unknown> {
    const o = this.#o;
    return runScript(this.#link.client, ACQUIRE, [this.#keys.leases(o.route), this.#keys.replicas(o.route), this.#keys.waiting(o.route)], [id, w, this.#slots, o.replicas, this.#share, o.leaseTtlMs, force ? 1 : 0, o.replicaId]);
  }

  #releaser(id: string): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const lease = this.#leases.get(id);
      this.#leases.delete(id);
      if (!lease) return;
      this.#inFlight -= lease.weight;
      if (lease.shared && this.#link.up) {
        // Fire and forget: if it fails, the lease expires by itself within lease_ttl_ms.
        runScript(this.#link.client, RELEASE, [this.#keys.leases(this.#o.route), this.#keys.waiting(this.#o.route)], [id, lease.weight, this.#keys.released, this.#o.route]).catch((err) => this.#link.noteFailure(err));
      }
      this.pump();
    };
  }

  /** Offers free capacity to the waiters, oldest first; one attempt in flight at a time. */
  pump(): void {
    if (this.#pumping || this.#waiters.length === 0) return;
    this.#pumping = true;
    void this.#pumpLoop().finally(() => {
      this.#pumping = false;
    });
  }

  async #pumpLoop(): Promise<void> {
    while (this.#waiters.length > 0) {
      const head = this.#waiters[0]!;
      const release = await this.#take(head.weight);
      if (!release) return;
      if (head.settled) {
        release(); // it timed out or went away during the attempt
        continue;
      }
      this.#waiters.shift();
      head.grant(release);
    }
  }

  #schedulePoll(): void {
    if (this.#waiters.length === 0) {
      clearInterval(this.#poll);
      this.#poll = undefined;
      return;
    }
    if (this.#poll) return;
    this.#poll = setInterval(() => this.pump(), this.#o.pollMs ?? 250);
    this.#poll.unref();
  }

  /**
   * Keeps this replica's leases and its place among the live replicas: run every
   * lease_ttl_ms / 3. Also counts the lab-wide in-flight for the admin view.
   */
  async heartbeat(): Promise<void> {
    if (!this.#link.up) {
      this.labInFlight = null;
      return;
    }
    const o = this.#o;
    try {
      await this.#heartbeatScript(false);
      const [count, excess] = (await runScript(this.#link.client, COUNT, [this.#keys.leases(o.route)], [this.#share, o.replicaId])) as unknown[];
      this.labInFlight = Number(count);
      this.#othersExcess = Number(excess ?? 0);
    } catch (err) {
      this.labInFlight = null;
      this.#link.noteFailure(err);
    }
  }

  /** Marks this replica alive and renews (all: also re-adds) the leases of its running requests, in one step. */
  #heartbeatScript(all: boolean): Promise<unknown> {
    const o = this.#o;
    const members: string[] = [];
    for (const [id, l] of this.#leases) if (all || l.shared) for (let i = 1; i <= l.weight; i++) members.push(`${id}#${i}`);
    return runScript(this.#link.client, HEARTBEAT, [this.#keys.replicas(o.route), this.#keys.leases(o.route)], [o.replicaId, o.leaseTtlMs, all ? 1 : 0, ...members]);
  }

  /**
   * After Redis comes back: every running request is a lease again, in the same step that marks
   * this replica alive (so no other replica counts its share as free in between): those
   * admitted on the local share, and those admitted through Redis before it went (a Redis
   * restarted without persistence has lost them; one that kept them just renews them).
   */
  async rejoin(): Promise<void> {
    if (!this.#link.up) return;
    const running = [...this.#leases];
    try {
      await this.#heartbeatScript(true);
      for (const [id, l] of running) {
        if (this.#leases.get(id) === l) l.shared = true;
        // It ended during the round trip, its release not sent (it was local then): sent now.
        else if (!l.shared) await runScript(this.#link.client, RELEASE, [this.#keys.leases(this.#o.route), this.#keys.waiting(this.#o.route)], [id, l.weight, this.#keys.released, this.#o.route]);
      }
    } catch (err) {
      this.#link.noteFailure(err);
      return;
    }
    await this.heartbeat();
    this.pump();
  }

  dispose(): void {
    this.#o.onDispose?.();
    clearInterval(this.#poll);
    this.#poll = undefined;
    clearInterval(this.#rampTimer);
    this.#rampTimer = undefined;
    this.#ramp = null;
  }
}
