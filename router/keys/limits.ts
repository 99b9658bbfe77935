// Per-key counters: requests per minute, requests in flight, tokens this month. Behind one
// interface so a shared store (Redis, for several replicas) can replace the local one; every
// method may answer with a promise. The local store answers synchronously and never touches
// a database: usage of a month is read once through `loadUsage` and settled tokens go out
// through `onSettled` (the key service batches them into keys.db).

export type MaybePromise<T> = T | Promise<T>;

export interface RateLimits {
  rpm: number | null;
  maxInFlight: number | null;
}

export type RateVerdict = { ok: true } | { ok: false; why: 'rpm' | 'in_flight'; retryAfterS: number };

export type Reservation = { ok: true; reserved: number } | { ok: false; used: number; limit: number };

export interface MonthUsage {
  tokens: number;
  requests: number;
}

export interface KeyLimitStore {
  /** Counts one request against `rpm` and takes an in-flight place; a refusal counts nothing. */
  admit(keyId: string, limits: RateLimits, nowMs: number): MaybePromise<RateVerdict>;
  /** Takes back the rpm count of an admitted request that was then refused (model, budget). */
  unadmit(keyId: string): MaybePromise<void>;
  /** Gives back the in-flight place `admit` took. */
  release(keyId: string): MaybePromise<void>;
  /**
   * Reserves up to `want` tokens of `month` against `limit` (null: no limit, reserves 0).
   * Refused when fewer than `need` tokens are left; otherwise the reservation is `want`
   * clamped to what is left, so concurrent requests overshoot by at most one request.
   */
  reserve(keyId: string, month: string, need: number, want: number, limit: number | null): MaybePromise<Reservation>;
  /** Ends a reservation: `reserved` is given back and `used` tokens are charged. */
  settle(keyId: string, month: string, reserved: number, used: number): MaybePromise<void>;
  /** Settled tokens and admitted requests of `month` (reservations not included). */
  usage(keyId: string, month: string): MaybePromise<MonthUsage>;
}

const WINDOW_MS = 60_000;

/** The admission times of the last `rpm` admitted requests, oldest first, in a ring. */
class RpmWindow {
  readonly times: Float64Array;
  start = 0;
  count = 0;

  constructor(readonly rpm: number) {
    this.times = new Float64Array(rpm);
  }

  /** 0 when a request may be admitted now, else milliseconds until one may. */
  waitMs(now: number): number {
    if (this.count < this.rpm) return 0;
    const oldest = this.times[this.start]!;
    return Math.max(0, oldest + WINDOW_MS - now);
  }

  push(now: number): void {
    if (this.count < this.rpm) {
      this.times[(this.start + this.count) % this.rpm] = now;
      this.count++;
    } else {
      this.times[this.start] = now;
      this.start = (this.start + 1) % this.rpm;
    }
  }

  popNewest(): void {
    if (this.count > 0) this.count--;
  }
}

class KeyCounters {
  inFlight = 0;
  window: RpmWindow | null = null;
  month = '';
  used = 0;
  reserved = 0;
  requests = 0;
}

export interface LocalStoreHooks {
  /** Usage already persisted for a key and month (read once per key and month). */
  loadUsage(keyId: string, month: string): MonthUsage;
  /** Called for every settled request: persist the deltas (batched by the caller). */
  onSettled(keyId: string, month: string, tokens: number, requests: number): void;
}

export class LocalKeyLimits implements KeyLimitStore {
  readonly #keys = new Map<string, KeyCounters>();
  readonly #hooks: LocalStoreHooks;

  constructor(hooks: LocalStoreHooks) {
    this.#hooks = hooks;
  }

  #counters(keyId: string): KeyCounters {
    let c = this.#keys.get(keyId);
    if (!c) {
      c = new KeyCounters();
      this.#keys.set(keyId, c);
    }
    return c;
  }

  /** The month's counters, loaded from the persisted usage the first time a month is seen. */
  #month(keyId: string, month: string): KeyCounters {
    const c = this.#counters(keyId);
    if (c.month !== month) {
      const u = this.#hooks.loadUsage(keyId, month);
      c.month = month;
      c.used = u.tokens;
      c.requests = u.requests;
      c.reserved = 0;
    }
    return c;
  }

  admit(keyId: string, limits: RateLimits, nowMs: number): RateVerdict {
    const c = this.#counters(keyId);
    if (limits.maxInFlight !== null && c.inFlight >= limits.maxInFlight) return { ok: false, why: 'in_flight', retryAfterS: 1 };
    if (limits.rpm !== null) {
      if (c.window === null || c.window.rpm !== limits.rpm) c.window = new RpmWindow(limits.rpm);
      const wait = c.window.waitMs(nowMs);
      if (wait > 0) return { ok: false, why: 'rpm', retryAfterS: Math.min(60, Math.max(1, Math.ceil(wait / 1000))) };
      c.window.push(nowMs);
    } else {
      c.window = null;
    }
    c.inFlight++;
    return { ok: true };
  }

  unadmit(keyId: string): void {
    this.#keys.get(keyId)?.window?.popNewest();
  }

  release(keyId: string): void {
    const c = this.#keys.get(keyId);
    if (c && c.inFlight > 0) c.inFlight--;
  }

  reserve(keyId: string, month: string, need: number, want: number, limit: number | null): Reservation {
    const c = this.#month(keyId, month);
    if (limit === null) return { ok: true, reserved: 0 };
    const left = limit - c.used - c.reserved;
    if (left <= 0 || left < need) return { ok: false, used: c.used, limit };
    const reserved = Math.min(Math.max(want, need, 1), left);
    c.reserved += reserved;
    return { ok: true, reserved };
  }

  settle(keyId: string, month: string, reserved: number, used: number): void {
    const c = this.#month(keyId, month);
    c.reserved = Math.max(0, c.reserved - reserved);
    c.used += used;
    c.requests++;
    this.#hooks.onSettled(keyId, month, used, 1);
  }

  usage(keyId: string, month: string): MonthUsage {
    const c = this.#month(keyId, month);
    return { tokens: c.used, requests: c.requests };
  }

  /** Reservations and in-flight places held now (tests: nothing may leak). */
  held(keyId: string): { inFlight: number; reserved: number } {
    const c = this.#keys.get(keyId);
    return { inFlight: c?.inFlight ?? 0, reserved: c?.reserved ?? 0 };
  }
}

/** "2026-12": the calendar month (UTC) of a time, cached until the month ends. */
export class MonthClock {
  #month = '';
  #until = 0;

  monthOf(nowMs: number): string {
    if (nowMs >= this.#until || nowMs < this.#until - 32 * 86_400_000) {
      const d = new Date(nowMs);
      const y = d.getUTCFullYear();
      const m = d.getUTCMonth();
      this.#month = `${y}-${String(m + 1).padStart(2, '0')}`;
      this.#until = Date.UTC(y, m + 1, 1);
    }
    return this.#month;
  }
}
