// API keys made at run time, kept in step across replicas (SPEC §12 with §14). A Redis hash
// (key id → the key as stored, without the secret, which is never stored anywhere) is the
// meeting point; each replica's keys.db stays its durable copy and what it serves from.
//
//   a change here      written to keys.db first (the admin answer does not wait on Redis),
//                      then merged with Redis's copy, written to the hash and announced on
//                      the events channel: the other replicas apply it at once.
//   a missed message   every replica re-reads the hash every few seconds and at start.
//   Redis away         a replica serves the keys it has; changes made meanwhile are written
//                      when Redis returns. Keys only in a replica's keys.db (made during an
//                      outage, before the cluster was set up, or lost by a Redis restart
//                      without persistence) are written back to the hash by the resync.
//
// Two copies of a key merge by key-records.ts: a revocation always sticks, the latest
// rotation wins, and limits come from the copy being written (a local change) or from Redis
// (a resync). A limit change made during an outage on a replica restarted before Redis
// returned is lost (it was pending in memory); creations, rotations and revocations are not.
import type { StoredKey } from '../keys/db.ts';
import type { MirroredKeys } from '../keys/service.ts';
import type { ClusterKeys } from './keys.ts';
import type { RedisLink } from './link.ts';
import { mergeKey, mirrorOf, parseKeyRecord, sameKey } from './key-records.ts';

export interface KeyEvent {
  type: 'key';
  by: string;
  key: StoredKey;
}

export class SharedKeys {
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #replicaId: string;
  #store: MirroredKeys | undefined;
  /** Changes made here not yet written to Redis: id → the key as stored here. */
  readonly #pending = new Map<string, StoredKey>();

  constructor(link: RedisLink, keys: ClusterKeys, replicaId: string) {
    this.#link = link;
    this.#keys = keys;
    this.#replicaId = replicaId;
  }

  attach(store: MirroredKeys): void {
    this.#store = store;
    store.onLocalChange((k) => {
      this.#pending.set(k.id, k);
      void this.flush();
    });
  }

  /** Writes pending changes; false if Redis could not take them (they stay pending). */
  async flush(): Promise<boolean> {
    const store = this.#store;
    if (!store || !this.#link.up) return false;
    const c = this.#link.client;
    try {
      for (const [id, local] of [...this.#pending]) {
        const raw = (await c.sendCommand(['HGET', this.#keys.keyRecords, id])) as string | null;
        const remote = raw ? parseKeyRecord(raw) : null;
        const merged = remote ? mergeKey(local, remote) : local;
        await this.#write([merged]);
        if (this.#pending.get(id) === local) this.#pending.delete(id);
        if (!sameKey(merged, local)) store.applyRemote([merged]);
      }
      return true;
    } catch (err) {
      this.#link.noteFailure(err);
      return false;
    }
  }

  /** Redis's keys merged into keys.db, and keys.db's into Redis (after pending changes are written). */
  async resync(): Promise<void> {
    const store = this.#store;
    if (!store || !(await this.flush()) || this.#pending.size > 0) return;
    try {
      const remote = new Map<string, StoredKey>();
      for (const [id, json] of pairs(await this.#link.client.sendCommand(['HGETALL', this.#keys.keyRecords]))) {
        const k = parseKeyRecord(json);
        if (k && k.id === id) remote.set(id, k);
      }
      const local = new Map(store.stored().map((k) => [k.id, k]));
      const take: StoredKey[] = [];
      const give: StoredKey[] = [];
      for (const [id, r] of remote) {
        const l = local.get(id);
        const merged = l ? mergeKey(r, l) : r;
        if (!l || !sameKey(merged, l)) take.push(merged);
        if (!sameKey(merged, r)) give.push(merged);
      }
      for (const [id, l] of local) if (!remote.has(id)) give.push(l);
      if (take.length > 0) store.applyRemote(take);
      if (give.length > 0) await this.#write(give);
    } catch (err) {
      this.#link.noteFailure(err);
    }
  }

  /** A key changed on another replica. */
  onEvent(e: KeyEvent): void {
    const store = this.#store;
    if (!store || e.by === this.#replicaId || this.#pending.has(e.key.id)) return;
    const incoming = parseKeyRecord(JSON.stringify(e.key));
    if (!incoming) return;
    const l = store.stored().find((k) => k.id === incoming.id);
    const merged = l ? mergeKey(incoming, l) : incoming;
    if (!l || !sameKey(merged, l)) store.applyRemote([merged]);
  }

  async #write(keys: StoredKey[]): Promise<void> {
    const c = this.#link.client;
    const args: string[] = [];
    for (const k of keys) args.push(k.id, JSON.stringify(mirrorOf(k)));
    await c.sendCommand(['HSET', this.#keys.keyRecords, ...args]);
    for (const k of keys) {
      const event: KeyEvent = { type: 'key', by: this.#replicaId, key: mirrorOf(k) };
      await c.sendCommand(['PUBLISH', this.#keys.events, JSON.stringify(event)]);
    }
  }
}

/** HGETALL's reply as [field, value] pairs (a flat array in RESP2, a map in RESP3). */
function pairs(reply: unknown): [string, string][] {
  if (Array.isArray(reply)) {
    const out: [string, string][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([String(reply[i]), String(reply[i + 1])]);
    return out;
  }
  if (reply instanceof Map) return [...reply].map(([k, v]) => [String(k), String(v)]);
  if (reply && typeof reply === 'object') return Object.entries(reply as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
  return [];
}
