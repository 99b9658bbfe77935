// The request log's tables, created and upgraded by numbered migrations (PRAGMA user_version)
// when the database is opened. A migration runs once, in a transaction; a database newer than
// this code is refused rather than written to.
import type Database from 'better-sqlite3';
import { LATENCY_BUCKETS } from './latency.ts';

/**
 * A rollup row's latency histogram: LATENCY_BUCKETS counts as unsigned 32-bit little-endian
 * integers in one BLOB (140 bytes), added together by the writer's hist_add() SQL function.
 * One column rather than 35 keeps rollup rows small and quick to read.
 */
export const HIST_BYTES = LATENCY_BUCKETS * 4;

/** The dimensions analytics group by; each has its own rows in the rollup tables. */
export const DIMENSIONS = ['route', 'bucket', 'client', 'model', 'status'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** Rollup tables by their step in seconds: per minute (kept 2 days), per hour and per day. */
export const ROLLUP_TABLES = { rollup_minute: 60, rollup_hour: 3_600, rollup_day: 86_400 } as const;
export type RollupTable = keyof typeof ROLLUP_TABLES;

const rollupTable = (name: string) => `CREATE TABLE ${name} (
  dim TEXT NOT NULL,
  t INTEGER NOT NULL,            -- start of the minute, hour or day, epoch seconds (UTC)
  key TEXT NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,       -- status >= 400
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,        -- sum over priced requests only
  priced INTEGER NOT NULL,       -- requests with a cost-equivalent
  hist BLOB NOT NULL,            -- latency histogram (HIST_BYTES)
  PRIMARY KEY (dim, t, key)
) WITHOUT ROWID`;

const MIGRATIONS: string[] = [
  // 1: requests, rollups, payloads and their content-addressed blobs.
  `CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    client TEXT NOT NULL,
    user_agent TEXT,
    model TEXT,
    bucket TEXT,
    route TEXT,
    served_model TEXT,
    reason TEXT NOT NULL,
    fallback_path TEXT NOT NULL,
    status INTEGER NOT NULL,
    status_class INTEGER NOT NULL,
    error_code TEXT,
    stream INTEGER NOT NULL,
    ttfb_ms INTEGER,
    duration_ms INTEGER NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    estimated_tokens INTEGER,
    cost_equivalent_usd REAL,
    price_ref TEXT,
    attempts TEXT NOT NULL,
    decision TEXT,
    policy_hash TEXT,
    synthetic INTEGER NOT NULL DEFAULT 0,
    has_payload INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX requests_ts ON requests (ts);
  CREATE INDEX requests_request_id ON requests (request_id);
  CREATE INDEX requests_route ON requests (route, ts);
  CREATE INDEX requests_bucket ON requests (bucket, ts);
  CREATE INDEX requests_client ON requests (client, ts);
  CREATE INDEX requests_model ON requests (model, ts);
  CREATE INDEX requests_status ON requests (status_class, ts);
  CREATE INDEX requests_reason ON requests (reason, ts);
  ${rollupTable('rollup_minute')};
  ${rollupTable('rollup_hour')};
  ${rollupTable('rollup_day')};
  CREATE TABLE payloads (
    request_row INTEGER PRIMARY KEY,   -- requests.id
    ts INTEGER NOT NULL,
    request BLOB,                      -- gzip of the body without its system messages and tools
    response BLOB,                     -- gzip of the response as relayed
    system_hash TEXT,
    system_at TEXT,                    -- JSON: where the system messages were in messages[]
    tools_hash TEXT,
    truncated INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX payloads_ts ON payloads (ts);
  CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,             -- sha256 of the JSON text
    data BLOB NOT NULL,                -- gzip
    bytes INTEGER NOT NULL,
    last_used INTEGER NOT NULL         -- ts of the newest payload that refers to it
  );
  CREATE INDEX blobs_last_used ON blobs (last_used);`,
  // 2: the status index by exact code, not class: a code that matches few rows (502) or none
  // is one short walk, and a class (5xx) is read code by code (reader.ts).
  `CREATE INDEX requests_status_code ON requests (status, ts);
  DROP INDEX requests_status;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Connection settings for the writer: WAL (readers never block it), NORMAL sync (a crash can
 * lose the last transactions, never corrupt the file), and incremental auto-vacuum, which
 * must be set before the first table exists and lets retention hand freed pages back to the
 * file system a few at a time, without ever running VACUUM.
 */
export function configureWriter(db: Database.Database): void {
  if (db.pragma('user_version', { simple: true }) === 0) db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  // Checkpoint often enough that the -wal file stays small (pages, about 4 MB).
  db.pragma('wal_autocheckpoint = 1000');
  // 8 MB of page cache (SQLite's default is 2): the right edges of every index and the pages
  // that client-chosen (random) request ids land on stay in memory between batches.
  db.pragma('cache_size = -8192');
}

export function migrate(db: Database.Database): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > SCHEMA_VERSION) throw new Error(`requests.db has schema version ${from}, newer than this router's ${SCHEMA_VERSION}; run a newer homelab-router or move the file aside`);
  for (let v = from; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return { from, to: SCHEMA_VERSION };
}
