// The request log's database as its one writer sees it: opened (created, migrated) on demand,
// written batch by batch, and kept writing through faults. A batch that cannot be written
// (disk full, read-only, locked past the busy timeout, directory gone) is dropped and counted;
// the next batch tries again, so writing resumes by itself when the disk does. A corrupted
// file is moved aside (requests.db.corrupt-<time>) and a new one created. State changes are
// reported once each, through `notify`.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { RequestRecord } from '../obs/request-record.ts';
import { wireRow, type WireRow } from './row.ts';
import { configureWriter, migrate } from './schema.ts';
import { LogWriter, RETENTION_CHUNK, type WriterConfig } from './writer.ts';

export interface LogStateChange {
  ok: boolean;
  level: 'info' | 'warn' | 'error';
  message: string;
  code?: string | undefined;
}

export interface WriteResult {
  /** The rows as stored; null when the batch was dropped. */
  rows: WireRow[] | null;
  dropped: number;
}

// A database that failed to open is tried again at most this often.
const REOPEN_EVERY_MS = 1_000;
const RETENTION_EVERY_MS = 60_000;

const CORRUPT = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_VTAB', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_INDEX']);

export function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && CORRUPT.has(code);
}

export class LogDatabase {
  readonly path: string;
  readonly #notify: (change: LogStateChange) => void;
  #db: Database.Database | null = null;
  #writer: LogWriter | null = null;
  #ok: boolean | null = null;
  #lastOpenTry = -Infinity;
  #lastRetention = -Infinity;
  #retentionBacklog = false;

  constructor(path: string, notify: (change: LogStateChange) => void) {
    this.path = path;
    this.#notify = notify;
  }

  get ok(): boolean {
    return this.#ok === true;
  }

  /** Opens the file if it is not open; false (state reported) when it cannot be. */
  open(now = Date.now()): boolean {
    if (this.#writer) return true;
    if (now - this.#lastOpenTry < REOPEN_EVERY_MS) return false;
    this.#lastOpenTry = now;
    try {
      this.#openOnce();
    } catch (err) {
      if (!isCorruption(err)) return this.#down('open', err);
      this.#moveAside(err);
      try {
        this.#openOnce();
      } catch (again) {
        return this.#down('open', again);
      }
    }
    this.#up();
    return true;
  }

  #openOnce(): void {
    this.#closeQuietly();
    mkdirSync(dirname(this.path), { recursive: true });
    const db = new Database(this.path);
    try {
      configureWriter(db);
      migrate(db);
      this.#writer = new LogWriter(db);
      this.#db = db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  write(records: RequestRecord[], cfg: WriterConfig, now = Date.now()): WriteResult {
    return this.writeRows(records.map(wireRow), cfg, now);
  }

  /** Writes a batch of rows as the main thread sent them (request-log.ts). */
  writeRows(records: WireRow[], cfg: WriterConfig, now = Date.now()): WriteResult {
    if (records.length === 0) return { rows: [], dropped: 0 };
    if (!this.open(now)) return { rows: null, dropped: records.length };
    let rows: WireRow[];
    try {
      rows = this.#writer!.writeRows(records, cfg);
    } catch (err) {
      if (!isCorruption(err)) {
        // Closed, so the next batch opens it afresh (a file moved or a directory remounted).
        this.#closeQuietly();
        this.#down('write', err);
        return { rows: null, dropped: records.length };
      }
      this.#moveAside(err);
      this.#lastOpenTry = -Infinity;
      if (!this.open(now)) return { rows: null, dropped: records.length };
      try {
        rows = this.#writer!.writeRows(records, cfg);
      } catch (again) {
        this.#closeQuietly();
        this.#down('write', again);
        return { rows: null, dropped: records.length };
      }
    }
    this.#up();
    this.#retention(cfg, now);
    return { rows, dropped: 0 };
  }

  /** Retention: a step a minute, or after every batch while old rows are left over. */
  #retention(cfg: WriterConfig, now: number): void {
    if (!this.#retentionBacklog && now - this.#lastRetention < RETENTION_EVERY_MS) return;
    this.#lastRetention = now;
    try {
      this.#retentionBacklog = this.#writer!.retentionStep(cfg.request_log, now) >= RETENTION_CHUNK;
    } catch (err) {
      this.#retentionBacklog = false;
      this.#notify({ ok: this.ok, level: 'warn', message: `request log retention failed: ${describe(err)}`, code: codeOf(err) });
    }
  }

  /** A retention step when the router is idle (the worker's timer). */
  tick(cfg: WriterConfig, now = Date.now()): void {
    if (this.#writer) this.#retention(cfg, now);
  }

  close(): void {
    this.#closeQuietly();
  }

  #closeQuietly(): void {
    const db = this.#db;
    this.#db = null;
    this.#writer = null;
    try {
      db?.close();
    } catch {
      // Already unusable: nothing to release.
    }
  }

  #moveAside(err: unknown): void {
    this.#closeQuietly();
    const aside = `${this.path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      if (existsSync(this.path)) renameSync(this.path, aside);
      if (existsSync(`${this.path}-wal`)) renameSync(`${this.path}-wal`, `${aside}-wal`);
      rmSync(`${this.path}-shm`, { force: true });
      this.#notify({ ok: false, level: 'error', message: `request log ${this.path} is corrupt (${describe(err)}); moved it aside to ${aside} and started a new, empty one`, code: codeOf(err) });
    } catch (moveErr) {
      this.#notify({ ok: false, level: 'error', message: `request log ${this.path} is corrupt (${describe(err)}) and could not be moved aside: ${describe(moveErr)}`, code: codeOf(err) });
    }
  }

  #down(what: 'open' | 'write', err: unknown): false {
    if (this.#ok !== false) {
      this.#ok = false;
      this.#notify({ ok: false, level: 'error', message: `request log: cannot ${what} ${this.path} (${describe(err)}); requests are still routed, their rows are dropped and counted until it can be written again`, code: codeOf(err) });
    }
    return false;
  }

  #up(): void {
    if (this.#ok === true) return;
    const recovered = this.#ok === false;
    this.#ok = true;
    this.#notify({ ok: true, level: 'info', message: recovered ? `request log: writing ${this.path} again` : `request log: writing ${this.path}` });
  }
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function describe(err: unknown): string {
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
