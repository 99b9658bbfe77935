// Writes batches of request records into the request log: the rows, their rollups and their
// payloads in one transaction, so a batch is there whole or not at all and analytics always
// agree with the rows. Retention deletes in small chunks, each its own short transaction.
// Runs where the database is owned (the log worker); no clock reads except `now` arguments.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type Database from 'better-sqlite3';
import type { RequestRecord } from '../obs/request-record.ts';
import type { PricingConfig, RequestLogConfig } from '../policy/types.ts';
import { latencyBucket } from './latency.ts';
import { priceOf } from './pricing.ts';
import { addCounts, emptyCounts, type RollupCounts } from './rollup-counts.ts';
import { ROW_COLUMNS, W, wireRow, type WireRow } from './row.ts';
import { DIMENSIONS, HIST_BYTES, ROLLUP_TABLES, type RollupTable } from './schema.ts';

export interface WriterConfig {
  request_log: RequestLogConfig;
  pricing: PricingConfig;
}

/**
 * Rows deleted per retention step: ~30 ms of the writer's time at a million rows (a row takes
 * its 8 index entries with it), so batches behind it wait no longer than that.
 */
export const RETENTION_CHUNK = 500;
/** How long the per-minute rollups are kept (the 1h and 24h analytics ranges read them). */
export const MINUTE_ROLLUP_KEEP_MS = 2 * 86_400_000;

interface Aggregate extends RollupCounts {
  dim: string;
  t: number;
  key: string;
}

export class LogWriter {
  readonly #db: Database.Database;
  readonly #insertRow: Database.Statement;
  readonly #upsert: Record<RollupTable, Database.Statement>;
  readonly #insertPayload: Database.Statement;
  readonly #upsertBlob: Database.Statement;
  readonly #writeBatch: (rows: WireRow[], cfg: WriterConfig) => WireRow[];

  constructor(db: Database.Database) {
    this.#db = db;
    this.#insertRow = db.prepare(`INSERT INTO requests (${ROW_COLUMNS.join(', ')}) VALUES (${ROW_COLUMNS.map(() => '?').join(', ')})`);
    db.function('hist_add', { deterministic: true }, histAdd);
    const upsert = (table: RollupTable) =>
      db.prepare(
        `INSERT INTO ${table} (dim, t, key, requests, errors, prompt_tokens, completion_tokens, cost_usd, priced, hist)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (dim, t, key) DO UPDATE SET requests = requests + excluded.requests, errors = errors + excluded.errors,
           prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens,
           cost_usd = cost_usd + excluded.cost_usd, priced = priced + excluded.priced, hist = hist_add(hist, excluded.hist)`,
      );
    this.#upsert = { rollup_minute: upsert('rollup_minute'), rollup_hour: upsert('rollup_hour'), rollup_day: upsert('rollup_day') };
    this.#insertPayload = db.prepare('INSERT OR REPLACE INTO payloads (request_row, ts, request, response, system_hash, system_at, tools_hash, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.#upsertBlob = db.prepare('INSERT INTO blobs (hash, data, bytes, last_used) VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET last_used = max(last_used, excluded.last_used)');
    this.#writeBatch = db.transaction((rows: WireRow[], cfg: WriterConfig) => this.#write(rows, cfg));
  }

  /** Writes the records in one transaction; returns the rows as stored. */
  write(records: RequestRecord[], cfg: WriterConfig): WireRow[] {
    return this.#writeBatch(records.map(wireRow), cfg);
  }

  /**
   * Writes the batch in one transaction; returns the rows as stored (priced, has_payload 0 or
   * 1: what the live feed shows). The rows are written as they are, not copied.
   */
  writeRows(rows: WireRow[], cfg: WriterConfig): WireRow[] {
    // The bodies, so that a batch that fails can be tried again whole (after a corrupt file).
    const bodies = rows.map((r) => r[W.has_payload]);
    try {
      return this.#writeBatch(rows, cfg);
    } catch (err) {
      rows.forEach((r, i) => (r[W.has_payload] = bodies[i]!));
      throw err;
    }
  }

  #write(rows: WireRow[], cfg: WriterConfig): WireRow[] {
    // Rollups are folded per minute in memory (five keys a row), then summed into hours and
    // days: one upsert per distinct (step, dimension, key) in the batch, not three per row.
    const minutes = new Map<string, Aggregate>();
    const storePayloads = cfg.request_log.store_payloads;
    for (const row of rows) {
      priceRow(row, cfg.pricing);
      const sent = row[W.has_payload];
      const bodies = storePayloads && typeof sent !== 'number' ? sent : null;
      row[W.has_payload] = bodies ? 1 : 0;
      // The row is bound as it is, positionally: no copy, no names to look up.
      const id = Number(this.#insertRow.run(row).lastInsertRowid);
      if (bodies) this.#payload(id, row[W.ts], bodies, cfg.request_log.payload_max_bytes);
      foldRow(minutes, row);
    }
    const upsert = (table: RollupTable, a: Aggregate) => this.#upsert[table].run(a.dim, a.t, a.key, a.requests, a.errors, a.prompt, a.completion, a.cost, a.priced, histBlob(a.hist));
    const hours = new Map<string, Aggregate>();
    const days = new Map<string, Aggregate>();
    for (const a of minutes.values()) {
      upsert('rollup_minute', a);
      merge(hours, a, ROLLUP_TABLES.rollup_hour);
      merge(days, a, ROLLUP_TABLES.rollup_day);
    }
    for (const a of hours.values()) upsert('rollup_hour', a);
    for (const a of days.values()) upsert('rollup_day', a);
    return rows;
  }

  /**
   * The request body with its system messages and tools stored apart, once per content hash
   * (coding agents resend the same tens of KB on every turn), and the response; each gzipped
   * and cut at `max` bytes of text.
   */
  #payload(id: number, ts: number, p: NonNullable<RequestRecord['payload']>, max: number): void {
    let requestText = p.request;
    let systemHash: string | null = null;
    let systemAt: string | null = null;
    let toolsHash: string | null = null;
    let truncated = false;
    if (requestText.length <= max) {
      try {
        const body = JSON.parse(requestText) as { messages?: Array<{ role?: unknown }>; tools?: unknown };
        if (Array.isArray(body.messages)) {
          const at: number[] = [];
          const system = body.messages.filter((m, i) => (m?.role === 'system' || m?.role === 'developer') && at.push(i) > 0);
          if (system.length > 0) {
            systemHash = this.#blob(JSON.stringify(system), ts);
            systemAt = JSON.stringify(at);
            body.messages = body.messages.filter((_, i) => !at.includes(i));
          }
        }
        if (body.tools !== undefined) {
          toolsHash = this.#blob(JSON.stringify(body.tools), ts);
          delete body.tools;
        }
        requestText = JSON.stringify(body);
      } catch {
        // Not JSON after all: stored as it came.
      }
    } else {
      requestText = requestText.slice(0, max);
      truncated = true;
    }
    let response = p.response;
    if (response !== null && response.length > max) {
      response = response.slice(0, max);
      truncated = true;
    }
    this.#insertPayload.run(id, ts, gzipSync(requestText), response === null ? null : gzipSync(response), systemHash, systemAt, toolsHash, truncated ? 1 : 0);
  }

  #blob(text: string, ts: number): string {
    const hash = createHash('sha256').update(text).digest('hex');
    this.#upsertBlob.run(hash, gzipSync(text), Buffer.byteLength(text), ts);
    return hash;
  }

  /**
   * One retention step: at most RETENTION_CHUNK rows out of each table past its age, then the
   * freed pages handed back. Returns how many rows went, so the caller can step again soon
   * while there is a backlog, between batches (a step never holds the writer long).
   */
  retentionStep(cfg: RequestLogConfig, now: number): number {
    const day = 86_400_000;
    const rawCutoff = now - cfg.retention_days * day;
    const payloadCutoff = now - cfg.payload_retention_days * day;
    const hourCutoff = Math.floor((now - cfg.rollup_retention_days * day) / 1000);
    const minuteCutoff = Math.floor((now - MINUTE_ROLLUP_KEEP_MS) / 1000);
    const chunk = RETENTION_CHUNK;
    const db = this.#db;
    let deleted = 0;
    const run = (sql: string, ...args: Array<number | string>) => {
      deleted += db.prepare(sql).run(...args).changes;
    };
    db.transaction(() => {
      run('DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE ts < ? ORDER BY ts LIMIT ?)', rawCutoff, chunk);
      // A payload never outlives its row.
      run('DELETE FROM payloads WHERE request_row IN (SELECT request_row FROM payloads WHERE ts < ? ORDER BY ts LIMIT ?)', Math.max(payloadCutoff, rawCutoff), chunk);
      run('DELETE FROM blobs WHERE hash IN (SELECT hash FROM blobs WHERE last_used < ? LIMIT ?)', Math.max(payloadCutoff, rawCutoff), chunk);
      // Rollups: a few rows per dimension and hour (minute); by primary-key range.
      for (const dim of DIMENSIONS) {
        run('DELETE FROM rollup_hour WHERE dim = ? AND t < ?', dim, hourCutoff);
        run('DELETE FROM rollup_day WHERE dim = ? AND t < ?', dim, hourCutoff);
        run('DELETE FROM rollup_minute WHERE dim = ? AND t < ?', dim, minuteCutoff);
      }
    })();
    db.pragma('incremental_vacuum(256)');
    return deleted;
  }
}

function histBlob(counts: number[]): Buffer {
  const b = Buffer.alloc(HIST_BYTES);
  for (let i = 0; i < counts.length; i++) if (counts[i] !== 0) b.writeUInt32LE(counts[i]!, i * 4);
  return b;
}

/** The SQL function hist_add(a, b): two histograms added bucket by bucket. */
function histAdd(a: unknown, b: unknown): Buffer {
  if (!Buffer.isBuffer(a) || a.length !== HIST_BYTES) return b as Buffer;
  if (!Buffer.isBuffer(b) || b.length !== HIST_BYTES) return a;
  const out = Buffer.alloc(HIST_BYTES);
  for (let o = 0; o < HIST_BYTES; o += 4) out.writeUInt32LE(a.readUInt32LE(o) + b.readUInt32LE(o), o);
  return out;
}

/** Fills in a row's cost-equivalent and its reference (the main thread leaves them null). */
export function priceRow(row: WireRow, pricing: PricingConfig): void {
  const price = priceOf({ route: row[W.route], served_model: row[W.served_model], prompt_tokens: row[W.prompt_tokens], completion_tokens: row[W.completion_tokens] }, pricing);
  row[W.cost_equivalent_usd] = price.usd;
  row[W.price_ref] = price.ref;
}

function dimensionKey(row: WireRow, dim: (typeof DIMENSIONS)[number]): string {
  switch (dim) {
    case 'route':
      return row[W.route] ?? '(none)';
    case 'bucket':
      return row[W.bucket] ?? '(none)';
    case 'client':
      return row[W.client];
    case 'model':
      return row[W.model] ?? '(none)';
    case 'status':
      return String(row[W.status]);
  }
}

function blank(dim: string, t: number, key: string): Aggregate {
  return { dim, t, key, ...emptyCounts() };
}

/** Adds one row to its minute's aggregate in every dimension. */
function foldRow(into: Map<string, Aggregate>, row: WireRow): void {
  const step = ROLLUP_TABLES.rollup_minute;
  const t = Math.floor(row[W.ts] / 1000 / step) * step;
  const status = row[W.status];
  const prompt = row[W.prompt_tokens] ?? 0;
  const completion = row[W.completion_tokens] ?? 0;
  const cost = row[W.cost_equivalent_usd];
  const bucket = latencyBucket(row[W.duration_ms]);
  for (const dim of DIMENSIONS) {
    const key = dimensionKey(row, dim);
    const id = `${dim}\u0000${key}\u0000${t}`;
    let a = into.get(id);
    if (!a) into.set(id, (a = blank(dim, t, key)));
    a.requests++;
    if (status >= 400) a.errors++;
    a.prompt += prompt;
    a.completion += completion;
    if (cost !== null) {
      a.cost += cost;
      a.priced++;
    }
    a.hist[bucket]!++;
  }
}

/** Adds a minute's aggregate to the aggregate of the longer step (hour, day) it falls in. */
function merge(into: Map<string, Aggregate>, m: Aggregate, step: number): void {
  const t = Math.floor(m.t / step) * step;
  const id = `${m.dim}\u0000${m.key}\u0000${t}`;
  let a = into.get(id);
  if (!a) into.set(id, (a = blank(m.dim, t, m.key)));
  addCounts(a, m);
}
