// Per-key limits counted across replicas (SPEC §12 with §14): rpm windows, in-flight places
// and monthly token reservations live in Redis, one script per step. While Redis is away each
// replica counts on its own (the local store) with its share of every limit: rpm and
// in-flight divided by the number of replicas (rounded up, at least 1), and a month's budget
// by the same share of what Redis last said was left. Settled usage is always also handed to
// the local store, which persists it in this replica's keys.db.
import type { KeyLimitStore, LocalKeyLimits, MonthUsage, RateLimits, RateVerdict, Reservation } from '../keys/limits.ts';
import type { ClusterKeys } from './keys.ts';
import type { RedisLink } from './link.ts';
import { runScript } from './run-script.ts';
import { KEY_ADMIT, KEY_RESERVE, KEY_SETTLE } from './scripts.ts';

export interface SharedKeyLimitsOptions {
  replicaId: string;
  replicas: number;
  leaseTtlMs: number;
}

interface Held {
  member: string;
  shared: boolean;
}

function share(limit: number | null, replicas: number): number | null {
  return limit === null ? null : Math.max(1, Math.ceil(limit / replicas));
}

export class SharedKeyLimits implements KeyLimitStore {
  readonly #local: LocalKeyLimits;
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #o: SharedKeyLimitsOptions;
  #seq = 0;
  /** In-flight places this replica holds, per key, newest last. */
  readonly #held = new Map<string, Held[]>();
  /** Tokens reserved on the local store (while Redis was away), per key|month, not yet settled. */
  readonly #localReserved = new Map<string, number>();
  /** Tokens used per key|month as Redis last said: sizes the local share of a budget. */
  readonly #known = new Map<string, number>();

  constructor(local: LocalKeyLimits, link: RedisLink, keys: ClusterKeys, opts: SharedKeyLimitsOptions) {
    this.#local = local;
    this.#link = link;
    this.#keys = keys;
    this.#o = opts;
  }

  #fail(err: unknown): void {
    this.#link.noteFailure(err);
  }

  async admit(keyId: string, limits: RateLimits, nowMs: number): Promise<RateVerdict> {
    if (this.#link.up) {
      const member = `${this.#o.replicaId}|${++this.#seq}`;
      try {
        const r = (await runScript(this.#link.client, KEY_ADMIT, [this.#keys.keyRpm(keyId), this.#keys.keyInFlight(keyId)], [member, limits.rpm ?? -1, limits.maxInFlight ?? -1, this.#o.leaseTtlMs])) as [number, string?, number?];
        if (Number(r[0]) !== 1) return { ok: false, why: r[1] === 'rpm' ? 'rpm' : 'in_flight', retryAfterS: Number(r[2] ?? 1) };
        this.#push(keyId, { member, shared: true });
        return { ok: true };
      } catch (err) {
        this.#fail(err);
      }
    }
    const v = this.#local.admit(keyId, { rpm: share(limits.rpm, this.#o.replicas), maxInFlight: share(limits.maxInFlight, this.#o.replicas) }, nowMs);
    if (v.ok) this.#push(keyId, { member: '', shared: false });
    return v;
  }

  #push(keyId: string, h: Held): void {
    let list = this.#held.get(keyId);
    if (!list) this.#held.set(keyId, (list = []));
    list.push(h);
  }

  #pop(keyId: string): Held | undefined {
    const list = this.#held.get(keyId);
    const h = list?.pop();
    if (list && list.length === 0) this.#held.delete(keyId);
    return h;
  }

  unadmit(keyId: string): void {
    // Called right after admit for a request then refused: its rpm count and its place go back.
    const h = this.#held.get(keyId)?.at(-1);
    if (!h) return;
    if (!h.shared) return this.#local.unadmit(keyId);
    if (this.#link.up) void this.#link.client.sendCommand(['ZREM', this.#keys.keyRpm(keyId), h.member]).catch((err) => this.#fail(err));
  }

  release(keyId: string): void {
    const h = this.#pop(keyId);
    if (!h) return;
    if (!h.shared) return this.#local.release(keyId);
    // A place left in Redis by a failed release expires with its lease.
    if (this.#link.up) void this.#link.client.sendCommand(['ZREM', this.#keys.keyInFlight(keyId), h.member]).catch((err) => this.#fail(err));
  }

  async reserve(keyId: string, month: string, need: number, want: number, limit: number | null): Promise<Reservation> {
    if (limit === null) return { ok: true, reserved: 0 };
    const km = `${keyId}|${month}`;
    if (this.#link.up) {
      try {
        const seed = this.#local.usage(keyId, month).tokens;
        const r = (await runScript(this.#link.client, KEY_RESERVE, [this.#keys.keyMonth(keyId, month)], [need, want, limit, seed])) as number[];
        this.#known.set(km, Number(r[2]));
        return Number(r[0]) === 1 ? { ok: true, reserved: Number(r[1]) } : { ok: false, used: Number(r[2]), limit };
      } catch (err) {
        this.#fail(err);
      }
    }
    // This replica's share of what was left when Redis was last reachable.
    const known = this.#known.get(km) ?? this.#local.usage(keyId, month).tokens;
    const allowance = known + Math.floor(Math.max(0, limit - known) / this.#o.replicas);
    const r = this.#local.reserve(keyId, month, need, want, allowance);
    if (r.ok) this.#localReserved.set(km, (this.#localReserved.get(km) ?? 0) + r.reserved);
    return r;
  }

  async settle(keyId: string, month: string, reserved: number, used: number): Promise<void> {
    const km = `${keyId}|${month}`;
    const local = this.#localReserved.get(km) ?? 0;
    if (local >= reserved && reserved > 0) {
      // Reserved while Redis was away: settled locally; Redis learns the usage when it can.
      this.#localReserved.set(km, local - reserved);
      this.#local.settle(keyId, month, reserved, used);
      await this.#settleShared(keyId, month, 0, used);
      return;
    }
    this.#local.settle(keyId, month, 0, used);
    await this.#settleShared(keyId, month, reserved, used);
  }

  async #settleShared(keyId: string, month: string, reserved: number, used: number): Promise<void> {
    if (!this.#link.up) return;
    try {
      const after = await runScript(this.#link.client, KEY_SETTLE, [this.#keys.keyMonth(keyId, month)], [reserved, used, 1]);
      this.#known.set(`${keyId}|${month}`, Number(after));
    } catch (err) {
      this.#fail(err);
    }
  }

  async usage(keyId: string, month: string): Promise<MonthUsage> {
    if (this.#link.up) {
      try {
        const [used, requests] = (await this.#link.client.sendCommand(['HMGET', this.#keys.keyMonth(keyId, month), 'used', 'requests'])) as (string | null)[];
        if (used !== null && used !== undefined) return { tokens: Number(used), requests: Number(requests ?? 0) };
      } catch (err) {
        this.#fail(err);
      }
    }
    return this.#local.usage(keyId, month);
  }

  /** Keeps this replica's in-flight places alive in Redis (run with the slot heartbeats). */
  async heartbeat(): Promise<void> {
    if (!this.#link.up || this.#held.size === 0) return;
    const ttl = this.#o.leaseTtlMs;
    try {
      const now = Number(((await this.#link.client.sendCommand(['TIME'])) as string[])[0]) * 1000;
      for (const [keyId, list] of this.#held) {
        const members = list.filter((h) => h.shared).flatMap((h) => [String(now + ttl), h.member]);
        if (members.length > 0) await this.#link.client.sendCommand(['ZADD', this.#keys.keyInFlight(keyId), 'XX', ...members]);
      }
    } catch (err) {
      this.#fail(err);
    }
  }
}
