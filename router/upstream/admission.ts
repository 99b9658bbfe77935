// Per-route admission: at most `slots` requests in flight, at most `queue` waiting (FIFO) for
// at most `queueTimeoutMs`. HAProxy's maxconn + maxqueue + timeout queue, per GPU.
//
// The one rule that keeps the counters honest: every acquired slot is released exactly once,
// through the Release handle, whatever ends the request (success, failure, client abort).
// Waiters that time out or are aborted leave the queue at once and never take a slot.

export type Release = () => void;

/**
 * What ends a wait: an AbortSignal, or (as undici also accepts) an EventEmitter with `aborted`
 * that emits 'abort' once. The request path uses the latter; see router/proxy/signals.ts.
 */
export type AbortSource = AbortSignal | (NodeJS.EventEmitter & { readonly aborted: boolean });

export function onAbort(signal: AbortSource, listener: () => void): () => void {
  if ('addEventListener' in signal) {
    signal.addEventListener('abort', listener, { once: true });
    return () => signal.removeEventListener('abort', listener);
  }
  signal.once('abort', listener);
  return () => signal.removeListener('abort', listener);
}

export type AcquireResult =
  | { ok: true; release: Release; waitedMs: number }
  | { ok: false; why: 'queue_full' | 'queue_timeout' | 'aborted' };

interface Waiter {
  grant: (release: Release) => void;
  settled: boolean;
  weight: number;
}

/**
 * What a route's machine state needs of its admission: the local FIFO limiter below, or one
 * shared by several replicas (router/cluster/shared-admission.ts).
 */
export interface SlotLimiter {
  readonly slots: number;
  readonly queueLimit: number;
  readonly queueTimeoutMs: number;
  /** Requests this router has admitted and not yet released. */
  readonly inFlight: number;
  readonly queued: number;
  readonly saturated: boolean;
  /** Requests admitted at once right now (less than `slots` during slow start). */
  readonly limit: number;
  acquire(signal: AbortSource, maxWaitMs?: number, weight?: number): Promise<AcquireResult> | AcquireResult;
  /** A slot now, without waiting and without a round trip anywhere, or null. */
  tryAcquire(weight?: number): Release | null;
  resize(slots: number, queueLimit: number, queueTimeoutMs: number): void;
  rampUp(ms: number, now?: number): void;
  dispose(): void;
}

/** Slow start's cap: from 1 at `ramp.from` to `slots` at `ramp.until`, linearly. */
export function rampedLimit(slots: number, ramp: { from: number; until: number } | null, now: number): number {
  if (ramp === null || now >= ramp.until) return slots;
  return Math.max(1, Math.min(slots, 1 + Math.floor(((slots - 1) * (now - ramp.from)) / (ramp.until - ramp.from))));
}

export class Admission implements SlotLimiter {
  #slots: number;
  #queueLimit: number;
  #queueTimeoutMs: number;
  #inFlight = 0;
  #waiters: Waiter[] = [];
  /** Slow start: the cap ramps from 1 to `slots` between these times (epoch ms); null when off. */
  #ramp: { from: number; until: number } | null = null;
  #rampTimer: NodeJS.Timeout | undefined;

  constructor(slots: number, queueLimit: number, queueTimeoutMs: number) {
    this.#slots = slots;
    this.#queueLimit = queueLimit;
    this.#queueTimeoutMs = queueTimeoutMs;
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

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#waiters.length;
  }

  get saturated(): boolean {
    return this.#inFlight >= this.limit;
  }

  /** Requests admitted at once right now: `slots`, or less while slow start ramps up. */
  get limit(): number {
    return rampedLimit(this.#slots, this.#ramp, Date.now());
  }

  /**
   * New limits from a reload. Requests already admitted keep counting: when `slots` shrinks
   * below them, nobody is admitted until enough of them have finished.
   */
  resize(slots: number, queueLimit: number, queueTimeoutMs: number): void {
    this.#slots = slots;
    this.#queueLimit = queueLimit;
    this.#queueTimeoutMs = queueTimeoutMs;
    for (const w of this.#waiters) w.weight = this.#clamp(w.weight);
    this.#grantWaiters();
  }

  /** Slow start: admit 1 at once, ramping to `slots` over `ms`. 0 ends any ramp. */
  rampUp(ms: number, now = Date.now()): void {
    clearInterval(this.#rampTimer);
    this.#rampTimer = undefined;
    if (ms <= 0 || this.#slots <= 1) {
      this.#ramp = null;
      this.#grantWaiters();
      return;
    }
    this.#ramp = { from: now, until: now + ms };
    // Waiters are granted as the cap rises, one step per slot.
    this.#rampTimer = setInterval(() => {
      if (Date.now() >= this.#ramp!.until) {
        this.#ramp = null;
        clearInterval(this.#rampTimer);
        this.#rampTimer = undefined;
      }
      this.#grantWaiters();
    }, Math.max(10, Math.ceil(ms / this.#slots)));
    this.#rampTimer.unref();
  }

  /** Stops the slow-start timer (the route is gone). */
  dispose(): void {
    clearInterval(this.#rampTimer);
    this.#rampTimer = undefined;
    this.#ramp = null;
  }

  /**
   * `weight` slots now, or null. A request with `n` choices is `n` sequences on the GPU
   * (vLLM schedules each one), so it takes `n` slots; never more than the route has, so a
   * wide request waits for the whole route instead of being refused forever.
   */
  tryAcquire(weight = 1): Release | null {
    const w = this.#clamp(weight);
    if (this.#inFlight + w > this.limit || this.#waiters.length > 0) return null;
    this.#inFlight += w;
    return this.#releaser(w);
  }

  #clamp(weight: number): number {
    return Math.max(1, Math.min(this.#slots, Math.floor(weight)));
  }

  /**
   * A slot, waiting in the FIFO queue if needed. `maxWaitMs` caps the wait below
   * queueTimeoutMs when the request's own deadline is nearer.
   */
  acquire(signal: AbortSource, maxWaitMs = this.queueTimeoutMs, weight = 1): Promise<AcquireResult> | AcquireResult {
    if (signal.aborted) return { ok: false, why: 'aborted' };
    const now = this.tryAcquire(weight);
    if (now) return { ok: true, release: now, waitedMs: 0 };
    const waitMs = Math.min(this.queueTimeoutMs, maxWaitMs);
    if (this.#waiters.length >= this.queueLimit) return { ok: false, why: 'queue_full' };
    if (waitMs <= 0) return { ok: false, why: 'queue_timeout' };

    const started = Date.now();
    return new Promise<AcquireResult>((resolve) => {
      const waiter: Waiter = {
        settled: false,
        weight: this.#clamp(weight),
        grant: (release) => finish({ ok: true, release, waitedMs: Date.now() - started }),
      };
      const finish = (result: AcquireResult) => {
        if (waiter.settled) return;
        waiter.settled = true;
        clearTimeout(timer);
        stopListening();
        if (!result.ok) {
          this.#remove(waiter);
          // A wide waiter leaving the head may unblock narrower ones behind it.
          this.#grantWaiters();
        }
        resolve(result);
      };
      const timer = setTimeout(() => finish({ ok: false, why: 'queue_timeout' }), waitMs);
      const stopListening = onAbort(signal, () => finish({ ok: false, why: 'aborted' }));
      this.#waiters.push(waiter);
    });
  }

  #remove(waiter: Waiter): void {
    const i = this.#waiters.indexOf(waiter);
    if (i !== -1) this.#waiters.splice(i, 1);
  }

  #releaser(weight: number): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight -= weight;
      this.#grantWaiters();
    };
  }

  /** Freed slots go to waiters in FIFO order, synchronously, as long as the oldest fits. */
  #grantWaiters(): void {
    while (this.#waiters.length > 0) {
      const head = this.#waiters[0]!;
        if (this.#inFlight + head.weight > this.limit) return;
      this.#waiters.shift();
      this.#inFlight += head.weight;
      head.grant(this.#releaser(head.weight));
    }
  }
}
