// The keys of SPEC §12 at run time: who a request is (authenticate), what it may do
// (checkModel, reserve), what it cost (finish), and the admin operations on keys. Keys are held
// in memory, indexed by hash, rebuilt when keys.db or the policy changes: after start the
// request path reads no database. Counting goes through a KeyLimitStore (local now; a shared
// one for several replicas later). Settled usage and last-use times are written to keys.db in
// batches, off the request path.
import { randomBytes } from 'node:crypto';
import type { Counter } from 'prom-client';
import { RouterError, type ErrorCode } from '../errors.ts';
import { AUTO_MODEL, type CompiledPolicy } from '../policy/compile.ts';
import { KeyDb, type KeyLimitsFields, type StoredKey, type UsageDelta } from './db.ts';
import { LIMIT_FIELDS, staticRecord, withDefaults, type KeyInput } from './input.ts';
import { compileEntry, type KeyEntry } from './entry.ts';
import { LocalKeyLimits, MonthClock, type KeyLimitStore, type MaybePromise, type RateVerdict, type Reservation } from './limits.ts';
import { displayPrefix, hashesEqual, KEY_PREFIX, keyHash, newKeySecret, presentedKey } from './secret.ts';
import type { IncomingHttpHeaders } from 'node:http';

/** A refusal that knows which key it refused (for the `client` metric label). */
export class KeyRefusal extends RouterError {
  readonly keyName: string | null;
  constructor(code: ErrorCode, message: string, keyName: string | null, opts: { retryAfterS?: number } = {}) {
    super(code, message, opts);
    this.keyName = keyName;
  }
}

/** One admitted request's hold on its key: an in-flight place, maybe a token reservation. */
export class KeyGrant {
  month = '';
  reserved = 0;
  /** The prompt estimate: charged to a key without a budget when no usage comes back. */
  prompt = 0;
  /** A handler took over settling (checkModel was called): it settles through recordOutcome. */
  bodyChecked = false;
  settled = false;
  holding = true;

  constructor(
    readonly key: KeyEntry,
    readonly path: string,
  ) {}
}

export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  models: string[];
  endpoints: string[];
  rpm: number | null;
  max_in_flight: number | null;
  monthly_tokens: number | null;
  used_tokens_month: number;
  requests_month: number;
  created_at: string | null;
  last_used_at: string | null;
  expires_at: string | null;
  revoked: boolean;
  revoked_at: string | null;
  admin: boolean;
  source: 'db' | 'policy';
}

export interface KeyMetrics {
  clientRequests: Counter<'client' | 'code'>;
  clientTokens: Counter<'client' | 'type'>;
}

export interface KeyServiceOptions {
  /** Where keys.db lives; undefined keeps keys in memory (nothing survives the process). */
  dataDir: string | undefined;
  policy: () => CompiledPolicy;
  metrics?: KeyMetrics;
  /** Replaces the local counters: a store, or a shared one built around the local one (its fallback). */
  limits?: KeyLimitStore | ((local: LocalKeyLimits) => KeyLimitStore);
  warn?: (msg: string, detail?: Record<string, unknown>) => void;
  /** How often settled usage is written to keys.db (ms). */
  flushMs?: number;
}

/** Keys kept in step with other replicas (cluster/shared-keys.ts) go through this. */
export interface MirroredKeys {
  /** Every key of keys.db (this replica's durable copy). */
  stored(): StoredKey[];
  /** Writes keys as another replica has them to keys.db; false when one could not be written. */
  applyRemote(keys: StoredKey[]): boolean;
  /** Told each key created, changed, rotated or revoked through this replica, as stored. */
  onLocalChange(listener: (key: StoredKey) => void): void;
}

const MODELS_PATH = '/v1/models';
const KEY_ID_BYTES = 9;

/**
 * keys.db in the data directory; when it cannot be opened there, an in-memory one, said loudly:
 * the router keeps routing (as with the request log), keys kept in the policy still work, and
 * keys made at run time are refused after a restart until the directory is fixed.
 */
function openKeyDb(dir: string | undefined, warn: KeyServiceOptions['warn']): KeyDb {
  try {
    return new KeyDb(dir);
  } catch (err) {
    if (dir === undefined) throw err;
    const msg = `${(err as Error).message}; API keys are kept in memory only until HOMELAB_ROUTER_DATA_DIR is fixed (keys created now are lost at restart, keys created before are not loaded)`;
    (warn ?? ((m: string) => console.error(m)))(msg, { data_dir: dir });
    return new KeyDb(undefined);
  }
}

export class KeyService implements MirroredKeys {
  readonly db: KeyDb;
  readonly limits: KeyLimitStore;
  readonly clock = new MonthClock();
  readonly #policy: () => CompiledPolicy;
  readonly #metrics: KeyMetrics | undefined;
  readonly #warn: (msg: string, detail?: Record<string, unknown>) => void;
  #byHash = new Map<string, KeyEntry>();
  #byId = new Map<string, KeyEntry>();
  #builtFor = '';
  #dataVersion = -1;
  readonly #pending = new Map<string, UsageDelta>();
  readonly #lastUsed = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #changeListeners: ((key: StoredKey) => void)[] = [];
  readonly #refusedRemote = new Set<string>();

  constructor(opts: KeyServiceOptions) {
    this.db = openKeyDb(opts.dataDir, opts.warn);
    this.#policy = opts.policy;
    this.#metrics = opts.metrics;
    this.#warn = opts.warn ?? (() => {});
    const local = () =>
      new LocalKeyLimits({
        loadUsage: (keyId, month) => this.db.usage(keyId, month),
        onSettled: (keyId, month, tokens, requests) => this.#noteUsage(keyId, month, tokens, requests),
      });
    this.limits = typeof opts.limits === 'function' ? opts.limits(local()) : (opts.limits ?? local());
    this.#rebuild(this.#policy());
    // Writes usage, and notices keys changed by another process sharing keys.db.
    this.#timer = setInterval(() => this.#tick(), opts.flushMs ?? 1000).unref();
  }

  get mode(): 'open' | 'keys' {
    return this.#policy().doc.auth.mode;
  }

  // ---- the request path -------------------------------------------------------------------

  /**
   * Who is asking: a grant for a valid key (rpm counted, an in-flight place taken), null when
   * no key is needed (`open` mode and no `hlr_` key presented). Throws a KeyRefusal.
   */
  authenticate(headers: IncomingHttpHeaders, path: string, now: number): KeyGrant | null | Promise<KeyGrant> {
    const policy = this.#policy();
    if (policy.hash !== this.#builtFor) this.#rebuild(policy);
    const secret = presentedKey(headers);
    const mode = policy.doc.auth.mode;
    if (secret === undefined) {
      if (mode === 'open') return null;
      throw new KeyRefusal('invalid_api_key', 'This router requires an API key: send "Authorization: Bearer hlr_..." (or the x-api-key header). Ask the operator for one (homelab-router keys create NAME).', null);
    }
    // Open mode ignores credentials that are not ours (SDKs insist on sending some key).
    if (mode === 'open' && !secret.startsWith(KEY_PREFIX)) return null;
    const hash = keyHash(secret);
    const key = this.#byHash.get(hash);
    if (key === undefined || !hashesEqual(key.hash, hash)) throw new KeyRefusal('invalid_api_key', 'The API key is not valid.', null);
    if (key.revoked) throw new KeyRefusal('invalid_api_key', `The API key ${key.record.prefix}... ("${key.name}") was revoked.`, null);
    if (now >= key.expiresAtMs) throw new KeyRefusal('invalid_api_key', `The API key ${key.record.prefix}... ("${key.name}") expired at ${key.record.expires_at}.`, null);
    if (!key.endpointAllowed(path) && !path.startsWith(MODELS_PATH)) throw new KeyRefusal('model_not_allowed', `The key "${key.name}" may not use ${path} (allowed endpoints: ${key.record.endpoints.join(', ')}).`, key.name);
    const verdict = this.limits.admit(key.id, key, now);
    if (verdict instanceof Promise) return verdict.then((v) => this.#granted(key, path, v, now));
    return this.#granted(key, path, verdict, now);
  }

  #granted(key: KeyEntry, path: string, v: RateVerdict, now: number): KeyGrant {
    if (!v.ok) {
      const what = v.why === 'rpm' ? `its limit of ${key.rpm} requests per minute` : `its limit of ${key.maxInFlight} requests at once`;
      throw new KeyRefusal('rate_limited', `The key "${key.name}" is over ${what}; retry in ${v.retryAfterS} s.`, key.name, { retryAfterS: v.retryAfterS });
    }
    this.#lastUsed.set(key.id, now);
    return new KeyGrant(key, path);
  }

  /**
   * The body's model must be allowed; with `tokens`, the month's budget is reserved: the prompt
   * estimate must fit, and up to prompt + answer (the max_tokens that will be sent, else
   * auth.answer_reserve_tokens) is held until the handler settles it through recordOutcome.
   * A refusal takes back the request's rpm count.
   */
  checkModel(grant: KeyGrant, model: string, tokens?: { prompt: number; answer: number | undefined }): MaybePromise<void> {
    const key = grant.key;
    if (!key.modelAllowed(model)) {
      this.#refuseAdmitted(grant);
      throw new KeyRefusal('model_not_allowed', `The key "${key.name}" may not use the model "${model}" (allowed: ${key.record.models.join(', ')}).`, key.name);
    }
    if (tokens === undefined) return;
    grant.bodyChecked = true;
    const now = Date.now();
    grant.month = this.clock.monthOf(now);
    const answer = tokens.answer ?? this.#answerReserve(tokens.prompt);
    grant.prompt = tokens.prompt;
    const r = this.limits.reserve(key.id, grant.month, Math.max(1, tokens.prompt), tokens.prompt + answer, key.monthlyTokens);
    if (r instanceof Promise) return r.then((v) => this.#reserved(grant, v, now));
    this.#reserved(grant, r, now);
  }

  /**
   * The routing headers must not lead a key past its models: `x-homelab-route` pins a route, so
   * that route's served model or one of its aliases must be allowed; `x-homelab-bucket` makes
   * the request auto traffic, so `homelab/auto` must be. Checked before checkModel reserves.
   */
  checkOverrides(grant: KeyGrant, policy: CompiledPolicy, routeHeader: string | undefined, bucketHeader: string | undefined): void {
    const key = grant.key;
    let refusal: string | undefined;
    if (routeHeader !== undefined && Object.hasOwn(policy.doc.routes, routeHeader)) {
      const r = policy.route(routeHeader);
      if (!key.modelAllowed(r.model) && !(r.aliases ?? []).some((a) => key.modelAllowed(a))) refusal = `route "${routeHeader}" (x-homelab-route)`;
    } else if (bucketHeader !== undefined && !key.modelAllowed(AUTO_MODEL)) refusal = `automatic routing (x-homelab-bucket needs "${AUTO_MODEL}")`;
    if (refusal === undefined) return;
    this.#refuseAdmitted(grant);
    throw new KeyRefusal('model_not_allowed', `The key "${key.name}" may not use ${refusal} (allowed: ${key.record.models.join(', ')}).`, key.name);
  }

  /** The answer of a request without max_tokens is bounded by the largest context in the policy. */
  #answerReserve(prompt: number): number {
    const p = this.#policy();
    const set = p.doc.auth.answer_reserve_tokens;
    if (set !== undefined) return set;
    let largest = 0;
    for (const name of p.routeNames) largest = Math.max(largest, p.route(name).context_tokens);
    return Math.max(0, largest - prompt);
  }

  #reserved(grant: KeyGrant, r: Reservation, now: number): void {
    if (r.ok) {
      grant.reserved = r.reserved;
      return;
    }
    this.#refuseAdmitted(grant);
    const d = new Date(now);
    const renews = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
    throw new KeyRefusal('budget_exceeded', `The key "${grant.key.name}" has used ${r.used} of its ${r.limit} tokens this month (UTC); the budget renews on ${renews}.`, grant.key.name);
  }

  #refuseAdmitted(grant: KeyGrant): void {
    grant.settled = true;
    void this.limits.unadmit(grant.key.id);
  }

  /**
   * Settles a request once: the upstream's usage when it reported one; otherwise, if an
   * upstream answered (a stream without usage, a client that left, a death mid-stream), what
   * was reserved (never more than the budget had left), or the prompt estimate for a key
   * without a budget; nothing if no upstream answered. Gives back the reservation either way.
   */
  finish(grant: KeyGrant, usage: { prompt: number; completion: number } | null, reachedUpstream: boolean): void {
    if (grant.settled) return;
    grant.settled = true;
    const used = usage ? usage.prompt + usage.completion : reachedUpstream ? grant.reserved || grant.prompt : 0;
    const month = grant.month || this.clock.monthOf(Date.now());
    void this.limits.settle(grant.key.id, month, grant.reserved, used);
    if (this.#metrics && usage) {
      this.#metrics.clientTokens.inc({ client: grant.key.name, type: 'prompt' }, usage.prompt);
      this.#metrics.clientTokens.inc({ client: grant.key.name, type: 'completion' }, usage.completion);
    }
  }

  /** The response closed: the in-flight place is given back; a request no handler settles is settled here. */
  closed(grant: KeyGrant, status: number): void {
    if (grant.holding) {
      grant.holding = false;
      void this.limits.release(grant.key.id);
    }
    if (!grant.bodyChecked) this.finish(grant, null, false);
    this.#metrics?.clientRequests.inc({ client: grant.key.name, code: String(status) });
  }

  refused(err: KeyRefusal): void {
    this.#metrics?.clientRequests.inc({ client: err.keyName ?? 'none', code: String(err.status) });
  }

  /** A key marked `admin: true`, valid now, presented as /admin/* bearer token. */
  isAdminKey(secret: string): boolean {
    return this.adminKeyId(secret) !== null;
  }

  /** The id of the admin key `secret` is, while it is valid (admin, not revoked, not expired); else null. */
  adminKeyId(secret: string): string | null {
    if (!secret.startsWith(KEY_PREFIX)) return null;
    const hash = keyHash(secret);
    const key = this.#byHash.get(hash);
    return key !== undefined && hashesEqual(key.hash, hash) && this.#validAdmin(key) ? key.id : null;
  }

  /** Whether the key with this id is still a valid admin key (a UI session opened with it lasts only that long). */
  isAdminKeyId(id: string): boolean {
    const key = this.#byId.get(id);
    return key !== undefined && this.#validAdmin(key);
  }

  #validAdmin(key: { admin: boolean; revoked: boolean; expiresAtMs: number }): boolean {
    return key.admin && !key.revoked && Date.now() < key.expiresAtMs;
  }

  // ---- admin operations -------------------------------------------------------------------

  async list(): Promise<KeyView[]> {
    const month = this.clock.monthOf(Date.now());
    const out: KeyView[] = [];
    for (const key of this.#byId.values()) out.push(await this.#view(key, month));
    return out;
  }

  async get(id: string): Promise<KeyView> {
    return this.#view(this.#entry(id), this.clock.monthOf(Date.now()));
  }

  /** Finds a key by id, else by the name of its live (not revoked) entry. */
  resolve(idOrName: string): KeyEntry | undefined {
    return this.#byId.get(idOrName) ?? [...this.#byId.values()].find((k) => k.name === idOrName && !k.revoked);
  }

  create(input: KeyInput): { id: string; name: string; key: string; view: Promise<KeyView> } {
    if (input.name === undefined) throw new RouterError('invalid_request', 'name is required.', { param: 'name' });
    if (this.resolve(input.name)?.name === input.name) throw new RouterError('conflict', `A key named "${input.name}" exists; revoke it first or pick another name.`, { param: 'name' });
    const secret = newKeySecret();
    const k: StoredKey = {
      id: 'key_' + randomBytes(KEY_ID_BYTES).toString('base64url'),
      name: input.name,
      hash: keyHash(secret),
      prefix: displayPrefix(secret),
      ...withDefaults(input),
      created_at: new Date().toISOString(),
      rotated_at: null,
      revoked_at: null,
      last_used_at: null,
    };
    this.db.insert(k);
    this.#changed(k.id);
    return { id: k.id, name: k.name, key: secret, view: this.get(k.id) };
  }

  patch(id: string, input: KeyInput): Promise<KeyView> {
    const key = this.#editable(id);
    if (input.name !== undefined && input.name !== key.name) throw new RouterError('invalid_request', 'A key keeps its name (it is the client of the request log); create a new key instead.', { param: 'name' });
    const r = key.record;
    const merged: KeyLimitsFields = { models: r.models, endpoints: r.endpoints, rpm: r.rpm, max_in_flight: r.max_in_flight, monthly_tokens: r.monthly_tokens, expires_at: r.expires_at, admin: r.admin };
    for (const f of LIMIT_FIELDS) if (input[f] !== undefined) (merged as any)[f] = input[f] === null && (f === 'models' || f === 'endpoints') ? ['*'] : input[f];
    this.db.updateLimits(id, merged);
    this.#changed(id);
    return this.get(id);
  }

  rotate(id: string): { id: string; key: string; prefix: string } {
    this.#editable(id);
    const secret = newKeySecret();
    this.db.rotate(id, keyHash(secret), displayPrefix(secret), new Date().toISOString());
    this.#changed(id);
    return { id, key: secret, prefix: displayPrefix(secret) };
  }

  revoke(id: string): Promise<KeyView> {
    this.#editable(id);
    this.db.revoke(id, new Date().toISOString());
    this.#changed(id);
    return this.get(id);
  }

  /** After an admin operation: the cache rebuilt, and the key as stored handed to the listeners. */
  #changed(id: string): void {
    this.#rebuild(this.#policy());
    const stored = this.db.get(id);
    if (stored) for (const l of this.#changeListeners) l(stored);
  }

  // ---- mirroring (several replicas) -------------------------------------------------------

  stored(): StoredKey[] {
    return this.db.all();
  }

  applyRemote(keys: StoredKey[]): boolean {
    let ok = true;
    for (const k of keys) {
      try {
        this.db.upsert(k);
      } catch (err) {
        // A live key of the same name made on two replicas while they could not see each other:
        // said once per key, not at every resync.
        ok = false;
        if (!this.#refusedRemote.has(k.id)) this.#warn(`cannot take the key "${k.name}" (${k.id}) from another replica into keys.db`, { err: (err as Error).message });
        this.#refusedRemote.add(k.id);
      }
    }
    if (keys.length > 0) this.#rebuild(this.#policy());
    return ok;
  }

  onLocalChange(listener: (key: StoredKey) => void): void {
    this.#changeListeners.push(listener);
  }

  #entry(id: string): KeyEntry {
    const key = this.#byId.get(id);
    if (!key) throw new RouterError('not_found', `No key with id "${id}" (GET /admin/keys lists them).`);
    return key;
  }

  #editable(id: string): KeyEntry {
    const key = this.#entry(id);
    if (key.source === 'policy') throw new RouterError('conflict', `The key "${key.name}" is defined in the policy (auth.keys); change it there.`);
    if (key.revoked) throw new RouterError('conflict', `The key "${key.name}" is revoked; create a new one.`);
    return key;
  }

  async #view(key: KeyEntry, month: string): Promise<KeyView> {
    const r = key.record;
    const u = await this.limits.usage(key.id, month);
    const lastMs = this.#lastUsed.get(key.id);
    const last = lastMs !== undefined ? new Date(lastMs).toISOString() : r.last_used_at;
    return {
      id: key.id, name: key.name, prefix: r.prefix, models: r.models, endpoints: r.endpoints, rpm: r.rpm, max_in_flight: r.max_in_flight,
      monthly_tokens: r.monthly_tokens, used_tokens_month: u.tokens, requests_month: u.requests, created_at: r.created_at || null,
      last_used_at: last, expires_at: r.expires_at, revoked: key.revoked, revoked_at: r.revoked_at, admin: r.admin, source: key.source,
    };
  }

  // ---- cache, persistence -----------------------------------------------------------------

  #rebuild(policy: CompiledPolicy): void {
    const byHash = new Map<string, KeyEntry>();
    const byId = new Map<string, KeyEntry>();
    this.#dataVersion = this.db.dataVersion();
    const stored = this.db.all();
    for (const k of stored) {
      const e = compileEntry(k, 'db');
      byHash.set(e.hash, e);
      byId.set(e.id, e);
    }
    for (const s of policy.doc.auth.keys) {
      const e = compileEntry(staticRecord(s), 'policy');
      if (byHash.has(e.hash)) this.#warn(`auth.keys: "${s.name}" has the hash of a key in keys.db; the policy entry wins`);
      if (stored.some((k) => k.name === s.name && k.revoked_at === null)) this.#warn(`auth.keys: "${s.name}" is also the name of a key in keys.db; the request log cannot tell them apart`);
      byHash.set(e.hash, e);
      byId.set(e.id, e);
    }
    this.#byHash = byHash;
    this.#byId = byId;
    this.#builtFor = policy.hash;
  }

  #noteUsage(keyId: string, month: string, tokens: number, requests: number): void {
    const k = keyId + ' ' + month;
    const d = this.#pending.get(k);
    if (d) {
      d.tokens += tokens;
      d.requests += requests;
    } else this.#pending.set(k, { keyId, month, tokens, requests });
  }

  #tick(): void {
    this.flush();
    try {
      if (this.db.dataVersion() !== this.#dataVersion) this.#rebuild(this.#policy());
    } catch (err) {
      this.#warn('cannot re-read keys.db', { err: (err as Error).message });
    }
  }

  /** Writes settled usage and last-use times to keys.db in one transaction. */
  flush(): void {
    if (this.#pending.size === 0 && this.#lastUsed.size === 0) return;
    const deltas = [...this.#pending.values()];
    const used: Array<[string, string]> = [...this.#lastUsed].filter(([id]) => !id.startsWith('policy:')).map(([id, ms]) => [id, new Date(ms).toISOString()]);
    try {
      this.db.write(deltas, used);
      this.#pending.clear();
      for (const [id, ms] of [...this.#lastUsed]) {
        const e = this.#byId.get(id);
        if (e && e.source === 'db') (e.record as { last_used_at: string | null }).last_used_at = new Date(ms).toISOString();
      }
      this.#lastUsed.clear();
    } catch (err) {
      // Kept for the next attempt: usage is never dropped for a transient error (SQLITE_BUSY).
      this.#warn('cannot write key usage to keys.db; will retry', { err: (err as Error).message });
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.flush();
    this.db.close();
  }
}
