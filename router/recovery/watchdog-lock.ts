// One watchdog acts at a time. The in-process watchdog of `serve` and the systemd timer's
// `watchdog --once` share the state file and may wake in the same second; without this both
// would probe, both count a failure and both restart the same container. A lock file beside
// the state file says who is acting and until when: a process holding it acts, any other
// skips its round. A lock past its expiry, or left by a process of this machine that no
// longer exists, is taken over. Within one process the lock is re-entrant, so a round and an
// admin-triggered recovery of the same watchdog do not exclude each other.
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

interface LockBody {
  pid: number;
  host: string;
  token: string;
  expires_at: number;
}

export interface LockHolder {
  pid: number;
  host: string;
  expires_at: number;
}

export class WatchdogLock {
  readonly path: string;
  readonly #now: () => number;
  #held = 0;
  #token: string | null = null;

  constructor(path: string, now: () => number = Date.now) {
    this.path = path;
    this.#now = now;
  }

  /** True when this process now holds the lock (for `ttlMs`); otherwise who does. */
  acquire(ttlMs: number): { ok: true } | { ok: false; holder: LockHolder | null } {
    if (this.#held > 0) {
      this.#held++;
      return { ok: true };
    }
    mkdirSync(dirname(this.path), { recursive: true });
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = randomUUID();
      if (this.#create({ pid: process.pid, host: hostname(), token, expires_at: this.#now() + ttlMs })) {
        this.#held = 1;
        this.#token = token;
        return { ok: true };
      }
      const current = this.#read();
      if (!this.#stale(current)) return { ok: false, holder: current.body ? { pid: current.body.pid, host: current.body.host, expires_at: current.body.expires_at } : null };
      if (!this.#takeOver(current.body?.token ?? null)) return { ok: false, holder: null };
    }
    return { ok: false, holder: null };
  }

  release(): void {
    if (this.#held === 0) return;
    this.#held--;
    if (this.#held > 0) return;
    const mine = this.#read().body?.token === this.#token;
    this.#token = null;
    if (mine) {
      try {
        unlinkSync(this.path);
      } catch {
        // Already gone.
      }
    }
  }

  #create(body: LockBody): boolean {
    let fd: number;
    try {
      fd = openSync(this.path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      writeSync(fd, JSON.stringify(body) + '\n');
    } finally {
      closeSync(fd);
    }
    return true;
  }

  #read(): { body: LockBody | null; mtimeMs: number | null } {
    let mtimeMs: number | null = null;
    try {
      mtimeMs = statSync(this.path).mtimeMs;
      const doc = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<LockBody>;
      if (typeof doc.pid === 'number' && typeof doc.token === 'string' && typeof doc.expires_at === 'number' && typeof doc.host === 'string') {
        return { body: doc as LockBody, mtimeMs };
      }
    } catch {
      // Missing, or not (yet) written whole.
    }
    return { body: null, mtimeMs };
  }

  #stale(current: { body: LockBody | null; mtimeMs: number | null }): boolean {
    const b = current.body;
    if (b === null) {
      // Unreadable: stale only if it has been so for a while (a holder may be writing it now).
      return current.mtimeMs === null || this.#now() - current.mtimeMs > 60_000;
    }
    if (b.expires_at <= this.#now()) return true;
    return b.host === hostname() && b.pid !== process.pid && !alive(b.pid);
  }

  /** Moves a stale lock aside; puts it back if another process replaced it meanwhile. */
  #takeOver(staleToken: string | null): boolean {
    const aside = `${this.path}.${process.pid}.${randomUUID()}.stale`;
    try {
      renameSync(this.path, aside);
    } catch {
      return true; // gone already: try to create it again
    }
    let moved: LockBody | null = null;
    try {
      moved = JSON.parse(readFileSync(aside, 'utf8')) as LockBody;
    } catch {
      moved = null;
    }
    if ((moved?.token ?? null) !== staleToken) {
      // A fresh lock was moved: restore it unless yet another one took its place.
      try {
        linkSync(aside, this.path);
      } catch {
        // Someone holds a newer lock; ours is not needed.
      }
      unlinkQuiet(aside);
      return false;
    }
    unlinkQuiet(aside);
    return true;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // nothing to remove
  }
}
