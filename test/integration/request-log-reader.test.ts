// Reads of the request log by status against a real SQLite file: an exact code and a class
// (read code by code over the (status, ts) index and merged) page through exactly the rows,
// in exactly the order, that a plain scan of the table gives. And a file created with the
// earlier index by status class is given the index by code when it is opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { RequestRecord } from '../../router/obs/request-record.ts';
import { parseFilters, RequestLogReader } from '../../router/reqlog/reader.ts';
import { configureWriter, migrate, SCHEMA_VERSION } from '../../router/reqlog/schema.ts';
import { LogWriter, type WriterConfig } from '../../router/reqlog/writer.ts';

const CFG: WriterConfig = {
  request_log: { enabled: true, retention_days: 30, rollup_retention_days: 400, store_payloads: false, payload_retention_days: 7, payload_max_bytes: 1 << 20 },
  pricing: { reference: {}, overrides: {} },
};
const STATUSES = [200, 200, 201, 400, 404, 499, 500, 502, 503, 200, 503];

function record(i: number, now: number): RequestRecord {
  // Timestamps against id order (as when long requests finish after short ones), three rows to
  // each, of neighbouring codes (500, 502 and 503 among them): ties go by id, never by code.
  return {
    request_id: `s-${i}`, ts: now - (Math.floor(i / 3) % 400) * 1_000, endpoint: 'chat', client: '127.0.0.1', user_agent: null, model: 'homelab/auto', bucket: 'coding',
    route: i % 3 === 0 ? 'spark' : 'ubuntu-6000', served_model: null, reason: 'bucket_match', fallback_path: '', status: STATUSES[i % STATUSES.length]!, error_code: null,
    stream: false, ttfb_ms: null, duration_ms: 10, prompt_tokens: null, completion_tokens: null, estimated_tokens: null, attempts: [], decision: null, policy_hash: 'sha256:x', synthetic: false,
  };
}

function seeded(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-reader-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'requests.db');
  const db = new Database(path);
  configureWriter(db);
  migrate(db);
  const now = Date.now();
  const w = new LogWriter(db);
  for (let b = 0; b < 4; b++) w.write(Array.from({ length: 300 }, (_, i) => record(b * 300 + i, now)), CFG);
  db.close();
  return path;
}

test('request log reader – status by code and by class pages through exactly the rows a scan finds, newest first', (t) => {
  const path = seeded(t);
  const reader = new RequestLogReader(path);
  const raw = new Database(path, { readonly: true });
  t.after(() => {
    reader.close();
    raw.close();
  });
  for (const status of ['5xx', '4xx', '2xx', '502', '201', '200', '504', '3xx']) {
    const where = status.endsWith('xx') ? `status / 100 = ${status[0]}` : `status = ${status}`;
    const want = raw.prepare(`SELECT request_id FROM requests WHERE ${where} ORDER BY ts DESC, id DESC`).pluck().all() as string[];
    const got: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 200; page++) {
      const r = reader.list(parseFilters({ status, limit: '37', ...(cursor ? { cursor } : {}) }));
      got.push(...r.requests.map((x) => x.request_id));
      assert.ok(r.requests.every((x) => (status.endsWith('xx') ? Math.floor(x.status / 100) === Number(status[0]) : x.status === Number(status))));
      if (!r.next_cursor) break;
      cursor = r.next_cursor;
    }
    assert.deepEqual(got, want, `status=${status}`);
  }
  // With another filter as well.
  const spark5xx = raw.prepare("SELECT request_id FROM requests WHERE status >= 500 AND status < 600 AND route = 'spark' ORDER BY ts DESC, id DESC LIMIT 20").pluck().all();
  assert.deepEqual(reader.list(parseFilters({ status: '5xx', route: 'spark', limit: '20' })).requests.map((x) => x.request_id), spark5xx);
  // An exact code is one walk down the index by code.
  const plan = raw.prepare('EXPLAIN QUERY PLAN SELECT * FROM requests WHERE status = ? ORDER BY ts DESC, id DESC LIMIT 51').all(502) as Array<{ detail: string }>;
  assert.match(plan.map((p) => p.detail).join(' '), /USING INDEX requests_status_code \(status=\?\)/);
  assert.doesNotMatch(plan.map((p) => p.detail).join(' '), /TEMP B-TREE/);
});

test('request log – a version 1 file (the index by status class) gets the index by code when opened, its rows kept', (t) => {
  const path = seeded(t);
  const old = new Database(path);
  old.exec('DROP INDEX requests_status_code; CREATE INDEX requests_status ON requests (status_class, ts);');
  old.pragma('user_version = 1');
  old.close();
  const db = new Database(path);
  t.after(() => db.close());
  configureWriter(db);
  migrate(db);
  const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'requests_status%'").pluck().all();
  assert.deepEqual(indexes, ['requests_status_code']);
  assert.equal(db.prepare('SELECT count(*) FROM requests').pluck().get(), 1_200);
  migrate(db);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
});
