// How two copies of one API key (this replica's keys.db, and Redis or another replica) become
// one, whatever order the changes arrived in. Pure: no I/O.
//
//   revocation  sticks: a key revoked on any copy stays revoked (the earliest revocation time),
//               so no outage or restart brings a revoked key back.
//   secret      the copy rotated last wins (hash, prefix, rotated_at).
//   limits      models, endpoints, rpm, max_in_flight, monthly_tokens, expires_at, admin: from
//               the copy named `winner` (Redis's in a resync, this replica's for a change it
//               made and is writing out).
//   last use    the later one (kept per replica; never sent to Redis).
import type { StoredKey } from '../keys/db.ts';

/** What the replicas share of a key: all of it but the local last use. */
export function mirrorOf(k: StoredKey): StoredKey {
  return { ...k, last_used_at: null };
}

function later(a: string | null, b: string | null): boolean {
  if (a === null) return false;
  return b === null || a > b;
}

function earliest(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

export function mergeKey(winner: StoredKey, other: StoredKey): StoredKey {
  const out: StoredKey = { ...winner };
  if (later(other.rotated_at, winner.rotated_at)) {
    out.hash = other.hash;
    out.prefix = other.prefix;
    out.rotated_at = other.rotated_at;
  }
  out.revoked_at = earliest(winner.revoked_at, other.revoked_at);
  out.last_used_at = later(other.last_used_at, winner.last_used_at) ? other.last_used_at : winner.last_used_at;
  return out;
}

/** Same shared fields (the last use is not shared). */
export function sameKey(a: StoredKey, b: StoredKey): boolean {
  return JSON.stringify(mirrorOf(a)) === JSON.stringify(mirrorOf(b));
}

/** A key record read from Redis, or null when it is not one. */
export function parseKeyRecord(json: string): StoredKey | null {
  try {
    const k = JSON.parse(json) as StoredKey;
    if (typeof k?.id !== 'string' || typeof k.name !== 'string' || typeof k.hash !== 'string' || !Array.isArray(k.models) || !Array.isArray(k.endpoints)) return null;
    return k;
  } catch {
    return null;
  }
}
