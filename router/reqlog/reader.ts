// Reads of the request log for the admin API and the CLI, on a read-only connection of the
// main thread (WAL: readers never wait for the writer, nor it for them). Every read is
// bounded: raw rows only as keyset pages of at most 500 on an index; analytics only from
// the rollup tables, never from raw rows.
import { existsSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { RouterError } from '../errors.ts';
import { LATENCY_BUCKETS, percentile } from './latency.ts';
import { addCounts, emptyCounts, type RollupCounts } from './rollup-counts.ts';
import { apiRow, type RequestRow, type StoredRow } from './row.ts';
import { DIMENSIONS, type Dimension, type RollupTable } from './schema.ts';

export interface RequestFilters {
  from?: number;
  to?: number;
  route?: string;
  bucket?: string;
  client?: string;
  model?: string;
  reason?: string;
  /** An exact status, or a class (2, 4, 5 for `2xx`, `4xx`, `5xx`). */
  status?: { exact: number } | { class: number };
  /** Request id prefix. */
  q?: string;
  limit: number;
  cursor?: { ts: number; id: number };
}

export const RANGES = {
  '1h': { spanS: 3_600, stepS: 60, table: 'rollup_minute' },
  '24h': { spanS: 86_400, stepS: 3_600, table: 'rollup_hour' },
  '7d': { spanS: 7 * 86_400, stepS: 3_600, table: 'rollup_hour' },
  '30d': { spanS: 30 * 86_400, stepS: 86_400, table: 'rollup_day' },
} as const satisfies Record<string, { spanS: number; stepS: number; table: RollupTable }>;
export type Range = keyof typeof RANGES;

/** Series beyond this many keys (by requests) are summed into one "(other)" series. */
export const MAX_SERIES = 50;

export interface Figures {
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** Sum over priced requests; null when none was priced ("unpriced", never $0). */
  cost_equivalent_usd: number | null;
  unpriced_requests: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

export interface Analytics {
  range: Range;
  by: Dimension;
  step_s: number;
  from: string;
  to: string;
  series: Array<{ key: string; points: Array<{ t: string } & Figures>; totals: Figures }>;
  totals: Figures;
}

const SAFE_PREFIX = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

/** The query string of GET /admin/api/requests (and the CLI's flags), checked. */
export function parseFilters(q: Record<string, unknown>): RequestFilters {
  const str = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw new RouterError('invalid_request', `${name}: give it once, as a string`, { param: name });
    return v;
  };
  const f: RequestFilters = { limit: 50 };
  const from = str('from');
  const to = str('to');
  if (from !== undefined) f.from = parseTime('from', from);
  if (to !== undefined) f.to = parseTime('to', to);
  for (const k of ['route', 'bucket', 'client', 'model', 'reason'] as const) {
    const v = str(k);
    if (v !== undefined) f[k] = v;
  }
  const status = str('status');
  if (status !== undefined) {
    const cls = /^([1-5])xx$/i.exec(status);
    if (cls) f.status = { class: Number(cls[1]) };
    else if (/^[1-5][0-9]{2}$/.test(status)) f.status = { exact: Number(status) };
    else throw new RouterError('invalid_request', `status: "${status}" is not a status (200, 404) or a class (2xx, 4xx, 5xx)`, { param: 'status' });
  }
  const prefix = str('q');
  if (prefix !== undefined) {
    if (!SAFE_PREFIX.test(prefix)) throw new RouterError('invalid_request', 'q: a request id prefix (letters, digits and ._:@/+=-)', { param: 'q' });
    f.q = prefix;
  }
  const limit = str('limit');
  if (limit !== undefined) {
    if (!/^[0-9]+$/.test(limit) || Number(limit) < 1 || Number(limit) > 500) throw new RouterError('invalid_request', 'limit: a whole number from 1 to 500', { param: 'limit' });
    f.limit = Number(limit);
  }
  const cursor = str('cursor');
  if (cursor !== undefined) f.cursor = decodeCursor(cursor);
  return f;
}

/** ISO 8601 or epoch milliseconds. */
export function parseTime(name: string, v: string): number {
  const ms = /^[0-9]{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw new RouterError('invalid_request', `${name}: "${v}" is neither an ISO time (2026-01-31T12:00:00Z) nor epoch milliseconds`, { param: name });
  return ms;
}

function encodeCursor(ts: number, id: number): string {
  return Buffer.from(`${ts}:${id}`).toString('base64url');
}

function decodeCursor(c: string): { ts: number; id: number } {
  const m = /^([0-9]{1,15}):([0-9]{1,15})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  if (!m) throw new RouterError('invalid_request', 'cursor: not a cursor this API gave out (use next_cursor as it came)', { param: 'cursor' });
  return { ts: Number(m[1]), id: Number(m[2]) };
}

export function parseAnalytics(q: Record<string, unknown>): { range: Range; by: Dimension } {
  const range = q.range === undefined ? '24h' : q.range;
  const by = q.by === undefined ? 'route' : q.by;
  if (typeof range !== 'string' || !Object.hasOwn(RANGES, range)) throw new RouterError('invalid_request', `range: one of ${Object.keys(RANGES).join(', ')}`, { param: 'range' });
  if (typeof by !== 'string' || !(DIMENSIONS as readonly string[]).includes(by)) throw new RouterError('invalid_request', `by: one of ${DIMENSIONS.join(', ')}`, { param: 'by' });
  return { range: range as Range, by: by as Dimension };
}

export class RequestLogReader {
  readonly path: string;
  #db: Database.Database | null = null;
  #ino = -1;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(path: string) {
    this.path = path;
  }

  /** The connection, (re)opened when the file is new (created, or replaced after corruption); null while there is none. */
  #conn(): Database.Database | null {
    let ino: number;
    try {
      ino = existsSync(this.path) ? statSync(this.path).ino : -1;
    } catch {
      ino = -1;
    }
    if (ino !== this.#ino) this.close();
    if (this.#db) return this.#db;
    if (ino === -1) return null;
    try {
      const db = new Database(this.path, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 2000');
      // A file the writer has not finished creating yet reads as empty.
      if ((db.pragma('user_version', { simple: true }) as number) === 0) {
        db.close();
        return null;
      }
      this.#db = db;
      this.#ino = ino;
      return db;
    } catch (err) {
      throw unavailable(this.path, err);
    }
  }

  #prepare(db: Database.Database, sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #read<T>(fn: (db: Database.Database) => T, empty: T): T {
    const db = this.#conn();
    if (!db) return empty;
    try {
      return fn(db);
    } catch (err) {
      this.close();
      throw unavailable(this.path, err);
    }
  }

  list(f: RequestFilters): { requests: RequestRow[]; next_cursor: string | null } {
    return this.#read((db) => {
      const where: string[] = [];
      const args: Array<string | number> = [];
      if (f.from !== undefined) where.push('ts >= ?') && args.push(f.from);
      if (f.to !== undefined) where.push('ts < ?') && args.push(f.to);
      for (const k of ['route', 'bucket', 'client', 'model', 'reason'] as const) {
        if (f[k] !== undefined) where.push(`${k} = ?`) && args.push(f[k]!);
      }
      if (f.q !== undefined) where.push('request_id GLOB ?') && args.push(`${f.q}*`);
      if (f.cursor) where.push('ts <= ? AND (ts < ? OR id < ?)') && args.push(f.cursor.ts, f.cursor.ts, f.cursor.id);
      const page = (codeWhere: string[], codeArgs: number[]): StoredRow[] => {
        const all = [...where, ...codeWhere];
        const sql = `SELECT * FROM requests ${all.length ? 'WHERE ' + all.join(' AND ') : ''} ORDER BY ts DESC, id DESC LIMIT ?`;
        return this.#prepare(db, sql).all(...args, ...codeArgs, f.limit + 1) as StoredRow[];
      };
      let rows: StoredRow[];
      if (f.status && 'exact' in f.status) rows = page(['status = ?'], [f.status.exact]);
      else if (f.status) {
        // A class (5xx) is the newest rows of each code of it present, merged: every read is a
        // walk down the (status, ts) index that stops at the page's length.
        rows = statusCodes(db, this.#prepare.bind(this), f.status.class)
          .flatMap((code) => page(['status = ?'], [code]))
          .sort((a, b) => b.ts - a.ts || b.id - a.id)
          .slice(0, f.limit + 1);
      } else rows = page([], []);
      const more = rows.length > f.limit;
      const shown = more ? rows.slice(0, f.limit) : rows;
      const last = shown.at(-1);
      return { requests: shown.map(apiRow), next_cursor: more && last ? encodeCursor(last.ts, last.id) : null };
    }, { requests: [], next_cursor: null });
  }

  /** The newest row with this request id, with its decision and stored payload; null if none. */
  get(requestId: string): (RequestRow & { decision: unknown; policy_hash: string | null; payload: unknown }) | null {
    return this.#read((db) => {
      const s = this.#prepare(db, 'SELECT * FROM requests WHERE request_id = ? ORDER BY id DESC LIMIT 1').get(requestId) as StoredRow | undefined;
      if (!s) return null;
      return { ...apiRow(s), decision: s.decision === null ? null : JSON.parse(s.decision), policy_hash: s.policy_hash, payload: s.has_payload ? this.#payload(db, s.id) : null };
    }, null);
  }

  #payload(db: Database.Database, rowId: number): unknown {
    const p = this.#prepare(db, 'SELECT * FROM payloads WHERE request_row = ?').get(rowId) as
      | { request: Buffer | null; response: Buffer | null; system_hash: string | null; system_at: string | null; tools_hash: string | null; truncated: number }
      | undefined;
    if (!p) return null; // past payload_retention_days
    const text = (b: Buffer | null) => (b === null ? null : gunzipSync(b).toString('utf8'));
    const blob = (hash: string | null) => {
      if (hash === null) return undefined;
      const b = this.#prepare(db, 'SELECT data FROM blobs WHERE hash = ?').get(hash) as { data: Buffer } | undefined;
      return b ? JSON.parse(gunzipSync(b.data).toString('utf8')) : undefined;
    };
    let request: unknown = text(p.request);
    try {
      const body = JSON.parse(request as string) as { messages?: unknown[]; tools?: unknown };
      const system = blob(p.system_hash) as unknown[] | undefined;
      if (system && Array.isArray(body.messages) && p.system_at) {
        const at = JSON.parse(p.system_at) as number[];
        at.forEach((i, n) => body.messages!.splice(i, 0, system[n]));
      }
      const tools = blob(p.tools_hash);
      if (tools !== undefined) body.tools = tools;
      request = body;
    } catch {
      // Cut at payload_max_bytes, or not JSON: shown as the text it is.
    }
    return { request, response: text(p.response), truncated: p.truncated === 1, system_hash: p.system_hash, tools_hash: p.tools_hash };
  }

  analytics(range: Range, by: Dimension, now = Date.now()): Analytics {
    const r = RANGES[range];
    const n = Math.round(r.spanS / r.stepS);
    const start = Math.floor(now / 1000 / r.stepS) * r.stepS - (n - 1) * r.stepS;
    type Acc = RollupCounts;
    const blank = emptyCounts;
    const perKey = new Map<string, { total: Acc; points: Acc[] }>();
    const rows = this.#read(
      (db) => this.#prepare(db, `SELECT t, key, requests, errors, prompt_tokens, completion_tokens, cost_usd, priced, hist FROM ${r.table} WHERE dim = ? AND t >= ?`).raw().all(by, start) as unknown[][],
      [],
    );
    for (const row of rows) {
      const key = row[1] as string;
      let s = perKey.get(key);
      if (!s) perKey.set(key, (s = { total: blank(), points: Array.from({ length: n }, blank) }));
      const i = Math.floor(((row[0] as number) - start) / r.stepS);
      if (i >= 0 && i < n) add(s.points[i]!, row);
    }
    for (const s of perKey.values()) for (const p of s.points) addCounts(s.total, p);
    // The busiest keys each get a series; the rest are summed into one.
    let keys = [...perKey.keys()].sort((a, b) => perKey.get(b)!.total.requests - perKey.get(a)!.total.requests || (a < b ? -1 : 1));
    if (keys.length > MAX_SERIES) {
      const other = { total: blank(), points: Array.from({ length: n }, blank) };
      for (const k of keys.slice(MAX_SERIES - 1)) {
        const s = perKey.get(k)!;
        addCounts(other.total, s.total);
        s.points.forEach((p, i) => addCounts(other.points[i]!, p));
        perKey.delete(k);
      }
      keys = [...keys.slice(0, MAX_SERIES - 1), '(other)'];
      perKey.set('(other)', other);
    }
    const grand = blank();
    const series = keys.map((key) => {
      const s = perKey.get(key)!;
      addCounts(grand, s.total);
      return { key, points: s.points.map((p, i) => ({ t: new Date((start + i * r.stepS) * 1000).toISOString(), ...figures(p) })), totals: figures(s.total) };
    });
    return { range, by, step_s: r.stepS, from: new Date(start * 1000).toISOString(), to: new Date((start + n * r.stepS) * 1000).toISOString(), series, totals: figures(grand) };

    function add(acc: Acc, row: unknown[]): void {
      acc.requests += row[2] as number;
      acc.errors += row[3] as number;
      acc.prompt += row[4] as number;
      acc.completion += row[5] as number;
      acc.cost += row[6] as number;
      acc.priced += row[7] as number;
      const hist = row[8] as Buffer;
      for (let h = 0, o = 0; h < LATENCY_BUCKETS && o + 4 <= hist.length; h++, o += 4) acc.hist[h]! += hist.readUInt32LE(o);
    }
    function figures(a: Acc): Figures {
      return {
        requests: a.requests,
        errors: a.errors,
        prompt_tokens: a.prompt,
        completion_tokens: a.completion,
        cost_equivalent_usd: a.priced > 0 ? Math.round(a.cost * 1e6) / 1e6 : null,
        unpriced_requests: a.requests - a.priced,
        p50_ms: percentile(a.hist, 0.5),
        p95_ms: percentile(a.hist, 0.95),
      };
    }
  }

  close(): void {
    this.#statements.clear();
    try {
      this.#db?.close();
    } catch {
      // Nothing to release.
    }
    this.#db = null;
    this.#ino = -1;
  }
}

/** The status codes of a class (5 for 5xx) that rows have: one index seek per code found, plus one. */
function statusCodes(db: Database.Database, prepare: (db: Database.Database, sql: string) => Database.Statement, cls: number): number[] {
  const next = prepare(db, 'SELECT status FROM requests WHERE status > ? AND status < ? ORDER BY status LIMIT 1').pluck();
  const codes: number[] = [];
  for (let code = cls * 100 - 1; ; ) {
    const found = next.get(code, cls * 100 + 100) as number | undefined;
    if (found === undefined) return codes;
    codes.push((code = found));
  }
}

function unavailable(path: string, err: unknown): RouterError {
  return new RouterError('request_log_unavailable', `The request log ${path} cannot be read: ${(err as Error).message}`);
}
