// What the admin API and the policy may say about a key, checked before anything changes:
// create and patch bodies (an unknown field or a bad value is a 400), defaults, and the
// records of the policy's static keys. Pure.
import { RouterError } from '../errors.ts';
import type { StaticKeyConfig } from '../policy/types.ts';
import type { KeyLimitsFields, StoredKey } from './db.ts';
import { normaliseHash } from './secret.ts';

export interface KeyInput {
  name?: string;
  models?: string[] | null;
  endpoints?: string[] | null;
  rpm?: number | null;
  max_in_flight?: number | null;
  monthly_tokens?: number | null;
  expires_at?: string | null;
  admin?: boolean;
}

export const LIMIT_FIELDS = ['models', 'endpoints', 'rpm', 'max_in_flight', 'monthly_tokens', 'expires_at', 'admin'] as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function bad(param: string, why: string): never {
  throw new RouterError('invalid_request', `${param} ${why}`, { param });
}

/** Validates a create or patch body; an unknown field or a bad value is a 400 that changes nothing. */
export function parseKeyInput(body: unknown): KeyInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) bad('body', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== 'name' && !(LIMIT_FIELDS as readonly string[]).includes(k)) bad(k, `is not a key field (fields: name, ${LIMIT_FIELDS.join(', ')})`);
  const out: KeyInput = {};
  if (b.name !== undefined) {
    if (typeof b.name !== 'string' || !NAME.test(b.name)) bad('name', 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
    out.name = b.name;
  }
  for (const f of ['models', 'endpoints'] as const) {
    const v = b[f];
    if (v === undefined) continue;
    if (v === null) out[f] = null;
    else if (Array.isArray(v) && v.length > 0 && v.length <= 100 && v.every((s) => typeof s === 'string' && s !== '' && s.length <= 200)) out[f] = v as string[];
    else bad(f, 'must be a non-empty array of names or * globs (at most 100), or null for all');
  }
  for (const f of ['rpm', 'max_in_flight', 'monthly_tokens'] as const) {
    const v = b[f];
    if (v === undefined) continue;
    if (v === null || (Number.isSafeInteger(v) && (v as number) >= 1)) out[f] = v as number | null;
    else bad(f, 'must be a positive integer, or null for no limit');
  }
  if (b.expires_at !== undefined) {
    if (b.expires_at === null) out.expires_at = null;
    else if (typeof b.expires_at === 'string' && !Number.isNaN(Date.parse(b.expires_at))) out.expires_at = new Date(Date.parse(b.expires_at)).toISOString();
    else bad('expires_at', 'must be an ISO 8601 date-time (e.g. 2027-01-31T00:00:00Z), or null');
  }
  if (b.admin !== undefined) {
    if (typeof b.admin !== 'boolean') bad('admin', 'must be true or false');
    out.admin = b.admin;
  }
  return out;
}

export function withDefaults(i: KeyInput): KeyLimitsFields {
  return { models: i.models ?? ['*'], endpoints: i.endpoints ?? ['*'], rpm: i.rpm ?? null, max_in_flight: i.max_in_flight ?? null, monthly_tokens: i.monthly_tokens ?? null, expires_at: i.expires_at ?? null, admin: i.admin ?? false };
}

export function staticRecord(s: StaticKeyConfig): StoredKey {
  const hash = normaliseHash(s.key_sha256) ?? '';
  return {
    id: `policy:${s.name}`, name: s.name, hash, prefix: `sha256:${hash.slice(0, 8)}`,
    models: s.models ?? ['*'], endpoints: s.endpoints ?? ['*'], rpm: s.rpm ?? null, max_in_flight: s.max_in_flight ?? null, monthly_tokens: s.monthly_tokens ?? null,
    expires_at: s.expires_at ?? null, admin: s.admin, created_at: null, rotated_at: null, revoked_at: null, last_used_at: null,
  };
}
