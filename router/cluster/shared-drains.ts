// Drains shared by every replica: a Redis hash (route → who and when) is the truth, a pub/sub
// message tells the others at once, and each replica re-reads the hash every `resyncMs` in
// case it missed one. A drain made while Redis is away holds on this replica and is written
// to Redis when it returns; so does a drain survive a replica's restart (it reads the hash at
// start).
import type { DrainStore } from '../upstream/drains.ts';
import type { ClusterKeys } from './keys.ts';
import type { RedisLink } from './link.ts';

export interface DrainEvent {
  type: 'drain';
  route: string;
  drained: boolean;
  by: string;
}

export class SharedDrains implements DrainStore {
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #replicaId: string;
  readonly #drained = new Set<string>();
  /** Changes made while Redis was away, to write when it returns: route → drained. */
  readonly #pending = new Map<string, boolean>();

  constructor(link: RedisLink, keys: ClusterKeys, replicaId: string) {
    this.#link = link;
    this.#keys = keys;
    this.#replicaId = replicaId;
  }

  isDrained(route: string): boolean {
    return this.#drained.has(route);
  }

  /** Takes effect here at once; reaches the other replicas through Redis. */
  setDrained(route: string, drained: boolean): void {
    this.#apply(route, drained);
    this.#pending.set(route, drained);
    void this.flush();
  }

  /** Writes pending changes; false if Redis could not take them (they stay pending). */
  async flush(): Promise<boolean> {
    if (!this.#link.up) return false;
    try {
      for (const [route, drained] of [...this.#pending]) {
        const c = this.#link.client;
        if (drained) await c.sendCommand(['HSET', this.#keys.drains, route, JSON.stringify({ by: this.#replicaId, at: Date.now() })]);
        else await c.sendCommand(['HDEL', this.#keys.drains, route]);
        const event: DrainEvent = { type: 'drain', route, drained, by: this.#replicaId };
        await c.sendCommand(['PUBLISH', this.#keys.events, JSON.stringify(event)]);
        if (this.#pending.get(route) === drained) this.#pending.delete(route);
      }
      return true;
    } catch (err) {
      this.#link.noteFailure(err);
      return false;
    }
  }

  /** Redis's hash becomes the local view (after pending local changes are written). */
  async resync(): Promise<void> {
    if (!(await this.flush()) || this.#pending.size > 0) return;
    try {
      const all = (await this.#link.client.sendCommand(['HKEYS', this.#keys.drains])) as string[];
      const now = new Set(all);
      for (const r of [...this.#drained]) if (!now.has(r)) this.#drained.delete(r);
      for (const r of now) this.#drained.add(r);
    } catch (err) {
      this.#link.noteFailure(err);
    }
  }

  /** A drain event from another replica. */
  onEvent(e: DrainEvent): void {
    if (e.by === this.#replicaId || this.#pending.has(e.route)) return;
    this.#apply(e.route, e.drained);
  }

  #apply(route: string, drained: boolean): void {
    if (drained) this.#drained.add(route);
    else this.#drained.delete(route);
  }
}
