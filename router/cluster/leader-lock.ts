// One replica at a time does the work that must not be done twice (health probes, the
// watchdog's restarts): whoever holds a Redis key set with NX and an expiry. The holder renews
// it every ttl/3; a holder that dies or is cut off loses it within ttl, and another takes over.
// A lock found under this replica's own id (left by its `watchdog --once`) is this replica's.
import type { RedisLink } from './link.ts';
import { runScript } from './run-script.ts';
import { HOLD_LOCK, RELEASE_LOCK, RENEW_LOCK } from './scripts.ts';

export class LeaderLock {
  readonly #key: string;
  readonly #owner: string;
  readonly #ttlMs: number;
  readonly #link: RedisLink;
  #held = false;
  #timer: NodeJS.Timeout | undefined;
  #listeners: ((held: boolean) => void)[] = [];

  constructor(link: RedisLink, key: string, owner: string, ttlMs: number) {
    this.#link = link;
    this.#key = key;
    this.#owner = owner;
    this.#ttlMs = ttlMs;
  }

  /** True while this replica holds the lock (never while Redis is unreachable). */
  get held(): boolean {
    return this.#held && this.#link.up;
  }

  onChange(listener: (held: boolean) => void): void {
    this.#listeners.push(listener);
  }

  start(): void {
    if (this.#timer) return;
    void this.tick();
    this.#timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref();
  }

  /** One attempt to take or keep the lock. */
  async tick(): Promise<boolean> {
    let held = false;
    if (this.#link.up) {
      try {
        held = this.#held
          ? Number(await runScript(this.#link.client, RENEW_LOCK, [this.#key], [this.#owner, this.#ttlMs])) === 1
          : Number(((await runScript(this.#link.client, HOLD_LOCK, [this.#key], [this.#owner, this.#ttlMs])) as unknown[])[0]) === 1;
      } catch (err) {
        this.#link.noteFailure(err);
      }
    }
    this.#set(held);
    return held;
  }

  #set(held: boolean): void {
    if (held === this.#held) return;
    this.#held = held;
    for (const l of this.#listeners) l(held);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#held && this.#link.up) await runScript(this.#link.client, RELEASE_LOCK, [this.#key], [this.#owner]).catch(() => undefined);
    this.#set(false);
  }
}
