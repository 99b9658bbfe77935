// A key as the request path sees it: limits compiled (globs to predicates, dates to ms), from
// keys.db or from the policy's static list. Pure: no I/O.
import type { StoredKey } from './db.ts';

export type KeySource = 'db' | 'policy';

export interface KeyEntry {
  readonly id: string;
  readonly name: string;
  readonly hash: string;
  readonly source: KeySource;
  readonly modelAllowed: (model: string) => boolean;
  readonly endpointAllowed: (path: string) => boolean;
  readonly rpm: number | null;
  readonly maxInFlight: number | null;
  readonly monthlyTokens: number | null;
  /** Epoch ms; Infinity when the key never expires. */
  readonly expiresAtMs: number;
  readonly admin: boolean;
  readonly revoked: boolean;
  /** What the admin API shows (never the secret). */
  readonly record: StoredKey;
}

/** `*` matches any run of characters (including `/`), `?` one; everything else is literal. */
export function globMatcher(patterns: readonly string[]): (value: string) => boolean {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('*')) return () => true;
  const exact = new Set(patterns.filter((p) => !p.includes('*') && !p.includes('?')));
  const wild = patterns.filter((p) => p.includes('*') || p.includes('?')).map((p) => new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 's'));
  if (wild.length === 0) return (v) => exact.has(v);
  return (v) => exact.has(v) || wild.some((re) => re.test(v));
}

export function compileEntry(k: StoredKey, source: KeySource): KeyEntry {
  return {
    id: k.id,
    name: k.name,
    hash: k.hash,
    source,
    modelAllowed: globMatcher(k.models),
    endpointAllowed: globMatcher(k.endpoints),
    rpm: k.rpm,
    maxInFlight: k.max_in_flight,
    monthlyTokens: k.monthly_tokens,
    expiresAtMs: k.expires_at === null ? Infinity : Date.parse(k.expires_at),
    admin: k.admin,
    revoked: k.revoked_at !== null,
    record: k,
  };
}
