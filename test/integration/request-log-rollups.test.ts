// The request log's rollups against the rows they summarise: folded per batch (per minute in
// memory, then summed into hours and days) they equal both the rollups worked out from the
// stored rows one by one and those of the same rows written in batches of one, across minute,
// hour and day boundaries, for every dimension. And the row as the main
// thread sends it keeps every column where the writer binds it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { RequestRecord } from '../../router/obs/request-record.ts';
import { ROW_COLUMNS, W, storedRowOf, wireRow } from '../../router/reqlog/row.ts';
import { configureWriter, migrate } from '../../router/reqlog/schema.ts';
import { LogWriter, type WriterConfig } from '../../router/reqlog/writer.ts';
import { latencyBucket, LATENCY_BUCKETS } from '../../router/reqlog/latency.ts';
import { DIMENSIONS, ROLLUP_TABLES } from '../../router/reqlog/schema.ts';

const CFG: WriterConfig = {
  request_log: { enabled: true, retention_days: 30, rollup_retention_days: 400, store_payloads: false, payload_retention_days: 7, payload_max_bytes: 1 << 20 },
  pricing: { reference: { spark: 'x/priced', 'win-5090': 'x/other' }, overrides: { 'x/priced': { input_per_mtok: 0.3, output_per_mtok: 1.7 }, 'x/other': { input_per_mtok: 0.07, output_per_mtok: 0.11 } } },
};

/** A mixed batch: 200 rows over four minutes around midnight UTC (two days, two hours). */
function mixed(): RequestRecord[] {
  const midnight = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  const routes = ['spark', 'win-5090', 'ubuntu-6000', null];
  const statuses = [200, 200, 200, 400, 499, 502, 503];
  return Array.from({ length: 200 }, (_, i) => ({
    request_id: `r-${i}`, ts: midnight - 120_000 + i * 1_197, endpoint: 'chat', client: `10.0.0.${i % 3}`, user_agent: null, model: i % 5 === 0 ? null : `m${i % 2}`,
    bucket: i % 7 === 0 ? null : `b${i % 4}`, route: routes[i % 4]!, served_model: null, reason: 'bucket_match', fallback_path: '', status: statuses[i % 7]!,
    error_code: null, stream: i % 2 === 0, ttfb_ms: null, duration_ms: (i * 137) % 20_000, prompt_tokens: i % 6 === 0 ? null : 100 + i * 31, completion_tokens: i % 9 === 0 ? null : i * 7,
    estimated_tokens: null, attempts: [], decision: null, policy_hash: 'sha256:x', synthetic: false,
  }));
}

function rollups(path: string): Record<string, Array<Record<string, unknown>>> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, Array<Record<string, unknown>>> = {};
    for (const table of ['rollup_minute', 'rollup_hour', 'rollup_day']) out[table] = db.prepare(`SELECT * FROM ${table} ORDER BY dim, t, key`).all() as Array<Record<string, unknown>>;
    return out;
  } finally {
    db.close();
  }
}

/** The rollups worked out from the stored rows themselves, one by one: what the writer must agree with. */
function fromRows(path: string): Record<string, Array<Record<string, unknown>>> {
  const db = new Database(path, { readonly: true });
  const rows = db.prepare('SELECT * FROM requests').all() as Array<Record<string, any>>;
  db.close();
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const [table, step] of Object.entries(ROLLUP_TABLES)) {
    const acc = new Map<string, Record<string, any>>();
    for (const r of rows) {
      for (const dim of DIMENSIONS) {
        const key = dim === 'status' ? String(r.status) : ((r[dim] as string | null) ?? '(none)');
        const t = Math.floor(r.ts / 1000 / step) * step;
        const id = `${dim} ${t} ${key}`;
        let a = acc.get(id);
        if (!a) acc.set(id, (a = { dim, t, key, requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0, priced: 0, hist: new Array<number>(LATENCY_BUCKETS).fill(0) }));
        a.requests++;
        a.errors += r.status >= 400 ? 1 : 0;
        a.prompt_tokens += r.prompt_tokens ?? 0;
        a.completion_tokens += r.completion_tokens ?? 0;
        if (r.cost_equivalent_usd !== null) (a.cost_usd += r.cost_equivalent_usd), a.priced++;
        a.hist[latencyBucket(r.duration_ms)]++;
      }
    }
    out[table] = [...acc.values()].sort((x, y) => (x.dim < y.dim ? -1 : x.dim > y.dim ? 1 : x.t - y.t || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0)));
  }
  return out;
}

function histOf(blob: Buffer): number[] {
  return Array.from({ length: LATENCY_BUCKETS }, (_, i) => blob.readUInt32LE(i * 4));
}

function written(dir: string, name: string, write: (w: LogWriter, rows: RequestRecord[]) => void): string {
  const path = join(dir, `${name}.db`);
  const db = new Database(path);
  configureWriter(db);
  migrate(db);
  write(new LogWriter(db), mixed());
  db.close();
  return path;
}

test('request log rollups – folded per batch they equal the rollups written row by row', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-rollups-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const batchedPath = written(dir, 'batched', (w, rows) => w.write(rows, CFG));
  const batched = rollups(batchedPath);
  const single = rollups(written(dir, 'single', (w, rows) => rows.forEach((r) => w.write([r], CFG))));
  const expected = fromRows(batchedPath);
  for (const table of Object.keys(single)) {
    const got = batched[table]!;
    assert.equal(got.length, expected[table]!.length, table);
    got.forEach((row, i) => {
      const { cost_usd: cost, hist, ...rest } = row;
      const { cost_usd: want, hist: wantHist, ...wantRest } = expected[table]![i]!;
      assert.deepEqual(rest, wantRest, `${table} ${row.dim} ${row.t} ${row.key} against the rows`);
      assert.deepEqual(histOf(hist as Buffer), wantHist, `${table} ${row.dim} ${row.t} ${row.key} latency histogram`);
      assert.ok(Math.abs((cost as number) - (want as number)) < 1e-9, `${table} cost ${cost} vs ${want}`);
    });
    const a = batched[table]!;
    const b = single[table]!;
    assert.equal(a.length, b.length, table);
    assert.ok(b.length > 0, table);
    a.forEach((row, i) => {
      const { cost_usd: costA, ...restA } = row;
      const { cost_usd: costB, ...restB } = b[i]!;
      assert.deepEqual(restA, restB, `${table} ${row.dim} ${row.t} ${row.key}`);
      // Sums of floating-point costs in another order: equal to far below the API's micro-dollar.
      assert.ok(Math.abs((costA as number) - (costB as number)) < 1e-9, `${table} cost ${costA} vs ${costB}`);
    });
  }
  // Across midnight: two days, the hours on either side, and four minutes or more.
  assert.equal(new Set(single.rollup_day!.map((r) => r.t)).size, 2);
  assert.ok(new Set(single.rollup_minute!.map((r) => r.t)).size >= 4);
  const requests = (table: string) => single[table]!.filter((r) => r.dim === 'status').reduce((n, r) => n + (r.requests as number), 0);
  assert.equal(requests('rollup_minute'), 200);
  assert.equal(requests('rollup_day'), 200);
});

test('request log rows – the row sent to the worker holds every column at its bound position', () => {
  assert.deepEqual(Object.keys(W), [...ROW_COLUMNS]);
  ROW_COLUMNS.forEach((c, i) => assert.equal(W[c], i, c));
  const r = mixed()[13]!;
  const w = wireRow({ ...r, decision: { scores: { a: 1 }, matched: {}, pinned: false, has_image: false, size_tier: 'small', intended_route: 'spark', skipped: [] } });
  assert.equal(w.length, ROW_COLUMNS.length);
  const s = storedRowOf(w, 7);
  assert.equal(s.id, 7);
  assert.equal(s.request_id, r.request_id);
  assert.equal(s.status_class, Math.floor(r.status / 100));
  assert.equal(s.stream, r.stream ? 1 : 0);
  assert.equal(s.attempts, '[]');
  assert.deepEqual(JSON.parse(s.decision!).scores, { a: 1 });
  assert.equal(s.has_payload, 0);
});
