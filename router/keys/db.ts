// keys.db: the keys and their settled usage per month, in their own SQLite file in the data
// directory (WAL). Kept apart from the request log so that moving a corrupt log aside or
// pruning it by retention never touches a key. The schema is versioned (PRAGMA user_version)
// and migrated at open. Only this module writes SQL.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MonthUsage } from './limits.ts';

export interface KeyLimitsFields {
  models: string[];
  endpoints: string[];
  rpm: number | null;
  max_in_flight: number | null;
  monthly_tokens: number | null;
  expires_at: string | null;
  admin: boolean;
}

export interface StoredKey extends KeyLimitsFields {
  id: string;
  name: string;
  hash: string;
  prefix: string;
  /** Null for keys of the policy. */
  created_at: string | null;
  rotated_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** Each entry moves the schema one version up; never edit one that has shipped. */
const MIGRATIONS: string[] = [
  `CREATE TABLE keys (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     prefix TEXT NOT NULL,
     models TEXT NOT NULL,
     endpoints TEXT NOT NULL,
     rpm INTEGER,
     max_in_flight INTEGER,
     monthly_tokens INTEGER,
     expires_at TEXT,
     admin INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     rotated_at TEXT,
     revoked_at TEXT,
     last_used_at TEXT
   );
   CREATE UNIQUE INDEX keys_live_name ON keys(name) WHERE revoked_at IS NULL;
   CREATE TABLE key_usage (
     key_id TEXT NOT NULL,
     month TEXT NOT NULL,
     tokens INTEGER NOT NULL DEFAULT 0,
     requests INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (key_id, month)
   ) WITHOUT ROWID;`,
];

export const KEYS_SCHEMA_VERSION = MIGRATIONS.length;

interface Row {
  id: string;
  name: string;
  hash: string;
  prefix: string;
  models: string;
  endpoints: string;
  rpm: number | null;
  max_in_flight: number | null;
  monthly_tokens: number | null;
  expires_at: string | null;
  admin: number;
  created_at: string;
  rotated_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

function fromRow(r: Row): StoredKey {
  return { ...r, models: JSON.parse(r.models) as string[], endpoints: JSON.parse(r.endpoints) as string[], admin: r.admin === 1 };
}

export interface UsageDelta {
  keyId: string;
  month: string;
  tokens: number;
  requests: number;
}

export class KeyDb {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #all: Database.Statement<[], Row>;
  readonly #usage: Database.Statement<[string, string], { tokens: number; requests: number }>;
  readonly #addUsage: Database.Statement<[string, string, number, number]>;
  readonly #touch: Database.Statement<[string, string, string]>;

  /** `dir` undefined: an in-memory database (nothing survives the process). */
  constructor(dir: string | undefined) {
    if (dir !== undefined) {
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        throw new Error(`cannot create the data directory ${dir} (HOMELAB_ROUTER_DATA_DIR): ${(err as Error).message}`);
      }
    }
    this.path = dir === undefined ? ':memory:' : join(dir, 'keys.db');
    try {
      this.#db = new Database(this.path);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('busy_timeout = 2000');
      migrate(this.#db, this.path);
    } catch (err) {
      throw new Error(`cannot open the keys database ${this.path}: ${(err as Error).message}`);
    }
    this.#all = this.#db.prepare('SELECT * FROM keys ORDER BY created_at, id');
    this.#usage = this.#db.prepare('SELECT tokens, requests FROM key_usage WHERE key_id = ? AND month = ?');
    this.#addUsage = this.#db.prepare(
      'INSERT INTO key_usage (key_id, month, tokens, requests) VALUES (?, ?, ?, ?) ON CONFLICT (key_id, month) DO UPDATE SET tokens = tokens + excluded.tokens, requests = requests + excluded.requests',
    );
    this.#touch = this.#db.prepare('UPDATE keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)');
  }

  all(): StoredKey[] {
    return this.#all.all().map(fromRow);
  }

  /** Changes when any connection (this one or another process) committed to the file. */
  dataVersion(): number {
    return this.#db.pragma('data_version', { simple: true }) as number;
  }

  insert(k: StoredKey): void {
    this.#db
      .prepare(
        `INSERT INTO keys (id, name, hash, prefix, models, endpoints, rpm, max_in_flight, monthly_tokens, expires_at, admin, created_at, rotated_at, revoked_at, last_used_at)
         VALUES (@id, @name, @hash, @prefix, @models, @endpoints, @rpm, @max_in_flight, @monthly_tokens, @expires_at, @admin, @created_at, NULL, NULL, NULL)`,
      )
      .run({ ...k, models: JSON.stringify(k.models), endpoints: JSON.stringify(k.endpoints), admin: k.admin ? 1 : 0 });
  }

  updateLimits(id: string, f: KeyLimitsFields): void {
    this.#db
      .prepare('UPDATE keys SET models = @models, endpoints = @endpoints, rpm = @rpm, max_in_flight = @max_in_flight, monthly_tokens = @monthly_tokens, expires_at = @expires_at, admin = @admin WHERE id = @id')
      .run({ ...f, id, models: JSON.stringify(f.models), endpoints: JSON.stringify(f.endpoints), admin: f.admin ? 1 : 0 });
  }

  get(id: string): StoredKey | undefined {
    const r = this.#db.prepare<[string], Row>('SELECT * FROM keys WHERE id = ?').get(id);
    return r ? fromRow(r) : undefined;
  }

  /**
   * Writes a key as another replica has it (cluster mirroring): inserted, or every field but
   * the local last use replaced.
   */
  upsert(k: StoredKey): void {
    this.#db
      .prepare(
        `INSERT INTO keys (id, name, hash, prefix, models, endpoints, rpm, max_in_flight, monthly_tokens, expires_at, admin, created_at, rotated_at, revoked_at, last_used_at)
         VALUES (@id, @name, @hash, @prefix, @models, @endpoints, @rpm, @max_in_flight, @monthly_tokens, @expires_at, @admin, @created_at, @rotated_at, @revoked_at, NULL)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, hash = excluded.hash, prefix = excluded.prefix, models = excluded.models, endpoints = excluded.endpoints,
           rpm = excluded.rpm, max_in_flight = excluded.max_in_flight, monthly_tokens = excluded.monthly_tokens, expires_at = excluded.expires_at, admin = excluded.admin,
           created_at = excluded.created_at, rotated_at = excluded.rotated_at, revoked_at = excluded.revoked_at`,
      )
      .run({ ...k, created_at: k.created_at ?? new Date(0).toISOString(), models: JSON.stringify(k.models), endpoints: JSON.stringify(k.endpoints), admin: k.admin ? 1 : 0 });
  }

  rotate(id: string, hash: string, prefix: string, at: string): void {
    this.#db.prepare('UPDATE keys SET hash = ?, prefix = ?, rotated_at = ? WHERE id = ?').run(hash, prefix, at, id);
  }

  revoke(id: string, at: string): void {
    this.#db.prepare('UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id);
  }

  usage(keyId: string, month: string): MonthUsage {
    return this.#usage.get(keyId, month) ?? { tokens: 0, requests: 0 };
  }

  /** One transaction for a batch of settled usage and last-use times. */
  write(deltas: Iterable<UsageDelta>, lastUsed: Iterable<[string, string]>): void {
    this.#db.transaction(() => {
      for (const d of deltas) this.#addUsage.run(d.keyId, d.month, d.tokens, d.requests);
      for (const [id, at] of lastUsed) this.#touch.run(at, id, at);
    })();
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

function migrate(db: Database.Database, path: string): void {
  const at = db.pragma('user_version', { simple: true }) as number;
  if (at > MIGRATIONS.length) throw new Error(`${path} has schema version ${at}, newer than this homelab-router knows (${MIGRATIONS.length}); run a newer version`);
  for (let v = at; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
