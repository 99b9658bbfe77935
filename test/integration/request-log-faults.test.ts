// The request log when its disk misbehaves, against real files: a directory that cannot be
// created, a corrupted requests.db, a full or read-only file system (tmpfs, where this
// process may mount one), retention; and SIGTERM on a real `homelab-router serve`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LogDatabase, type LogStateChange } from '../../router/reqlog/database.ts';
import type { RequestRecord } from '../../router/obs/request-record.ts';
import { LogWriter, RETENTION_CHUNK, type WriterConfig } from '../../router/reqlog/writer.ts';
import { configureWriter, migrate } from '../../router/reqlog/schema.ts';
import { chat, coding, labFor, pinned } from '../helpers/faults.ts';
import { SHIPPED_POLICY, startLab } from '../helpers/lab.ts';
import { parsePolicyText } from '../../router/policy/load.ts';
import { RouterMetrics } from '../../router/obs/metrics.ts';
import { BATCH_MAX, RequestLog } from '../../router/reqlog/request-log.ts';
import { cliEnv, startServe } from '../helpers/cli.ts';
import { pollUntil } from '../helpers/poll.ts';

const CFG: WriterConfig = {
  request_log: { enabled: true, retention_days: 30, rollup_retention_days: 400, store_payloads: false, payload_retention_days: 7, payload_max_bytes: 1 << 20 },
  pricing: { reference: {}, overrides: {} },
};

function record(i: number, ts = Date.now(), extra: Partial<RequestRecord> = {}): RequestRecord {
  return {
    request_id: `rec-${i}`, ts, endpoint: 'chat', client: '127.0.0.1', user_agent: 'test', model: 'homelab/auto', bucket: 'coding', route: 'ubuntu-6000',
    served_model: 'glm', reason: 'bucket_match', fallback_path: 'ubuntu-6000', status: 200, error_code: null, stream: false, ttfb_ms: 5, duration_ms: 20,
    prompt_tokens: 10, completion_tokens: 5, estimated_tokens: 9, attempts: [{ route: 'ubuntu-6000', outcome: 'ok', ms: 19, status: 200 }], decision: null,
    policy_hash: 'sha256:x', synthetic: false, ...extra,
  };
}

function count(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

test('request log faults – a corrupted file is moved aside, loudly, and a new one written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-corrupt-'));
  const path = join(dir, 'requests.db');
  writeFileSync(path, Buffer.alloc(64 * 1024, 'this is not a database '));
  const changes: LogStateChange[] = [];
  const db = new LogDatabase(path, (c) => changes.push(c));
  const r = db.write([record(1), record(2)], CFG);
  db.close();
  assert.equal(r.dropped, 0);
  assert.equal(count(path), 2);
  const aside = readdirSync(dir).filter((f) => f.startsWith('requests.db.corrupt-'));
  assert.equal(aside.length, 1);
  assert.equal(changes[0]!.level, 'error');
  assert.match(changes[0]!.message, /corrupt.*moved it aside/);
});

test('request log faults – a directory that cannot be created: rows dropped and counted, one message per state change, recovery when it can', () => {
  const root = mkdtempSync(join(tmpdir(), 'hr-blocked-'));
  writeFileSync(join(root, 'blocker'), 'a file where the data directory should be');
  const path = join(root, 'blocker', 'requests.db');
  const changes: LogStateChange[] = [];
  const db = new LogDatabase(path, (c) => changes.push(c));
  const t0 = Date.now();
  assert.deepEqual(db.write([record(1)], CFG, t0), { rows: null, dropped: 1 });
  assert.deepEqual(db.write([record(2), record(3)], CFG, t0 + 5_000), { rows: null, dropped: 2 });
  assert.equal(changes.length, 1, 'logged once, not per batch');
  assert.equal(changes[0]!.ok, false);
  assert.match(changes[0]!.message, /still routed/);
  // The disk is back.
  rmSync(join(root, 'blocker'));
  mkdirSync(join(root, 'blocker'));
  const back = db.write([record(4)], CFG, t0 + 10_000);
  db.close();
  assert.equal(back.dropped, 0);
  assert.equal(count(path), 1);
  assert.deepEqual(changes.map((c) => c.ok), [false, true]);
  assert.match(changes[1]!.message, /again/);
});

/** A tmpfs of `size` mounted for the test, or null where this process may not mount one. */
function tmpfs(t: import('node:test').TestContext, size: string): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'hr-tmpfs-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status !== 0) return null;
  t.after(() => spawnSync('umount', ['-l', dir]));
  return dir;
}

test('request log faults – a full disk drops rows and counts them; writing resumes when space is back', (t) => {
  const dir = tmpfs(t, '400k');
  if (!dir) return t.skip('cannot mount a tmpfs here (needs root)');
  const path = join(dir, 'requests.db');
  const changes: LogStateChange[] = [];
  const db = new LogDatabase(path, (c) => changes.push(c));
  t.after(() => db.close());
  let now = Date.now();
  let dropped = 0;
  let written = 0;
  const big = 'x'.repeat(2_000);
  for (let b = 0; b < 200 && dropped === 0; b++) {
    const r = db.write(Array.from({ length: 50 }, (_, i) => record(b * 50 + i, now, { user_agent: big })), CFG, (now += 2_000));
    dropped += r.dropped;
    written += r.rows?.length ?? 0;
  }
  assert.ok(dropped > 0, 'the disk filled up');
  assert.equal(changes.at(-1)!.ok, false);
  assert.match(changes.at(-1)!.message, /SQLITE_FULL|disk|full/i);
  assert.equal(spawnSync('mount', ['-o', 'remount,size=16m', dir]).status, 0);
  const again = db.write([record(999_999, now)], CFG, (now += 2_000));
  assert.equal(again.dropped, 0);
  assert.equal(changes.at(-1)!.ok, true);
  assert.equal(count(path), written + 1);
});

test('request log faults – a read-only file system drops rows; writing resumes when it is writable again', (t) => {
  const dir = tmpfs(t, '8m');
  if (!dir) return t.skip('cannot mount a tmpfs here (needs root)');
  const path = join(dir, 'requests.db');
  let now = Date.now();
  const seed = new LogDatabase(path, () => {});
  assert.equal(seed.write([record(1, now)], CFG, now).dropped, 0);
  seed.close();
  // Read-only from here (a remount needs no file open for writing on it).
  assert.equal(spawnSync('mount', ['-o', 'remount,ro', dir]).status, 0);
  const changes: LogStateChange[] = [];
  const db = new LogDatabase(path, (c) => changes.push(c));
  t.after(() => db.close());
  assert.equal(db.write([record(2, now)], CFG, (now += 2_000)).dropped, 1);
  assert.equal(db.write([record(3, now)], CFG, (now += 2_000)).dropped, 1);
  assert.deepEqual(changes.map((c) => c.ok), [false]);
  assert.equal(spawnSync('mount', ['-o', 'remount,rw', dir]).status, 0);
  assert.equal(db.write([record(4, now)], CFG, (now += 2_000)).dropped, 0);
  assert.deepEqual(changes.map((c) => c.ok), [false, true]);
  assert.equal(count(path), 2);
});

test('request log faults – the router keeps routing while requests.db cannot be written, and logs again once it can', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'hr-blocked-'));
  writeFileSync(join(root, 'data'), 'not a directory');
  const lab = await labFor(t, { dataDir: join(root, 'data') });
  for (let i = 0; i < 5; i++) assert.equal((await chat(lab, coding())).status, 200);
  await lab.svc.requestLog!.drained();
  const metric = async (re: RegExp) => Number(re.exec(await (await fetch(`${lab.base}/metrics`)).text())?.[1] ?? NaN);
  assert.equal(await metric(/^homelab_router_request_log_dropped_total\{reason="write_failed"\} (\d+)/m), 5);
  assert.equal(await metric(/^homelab_router_request_log_up (\d+)/m), 0);
  assert.equal(lab.svc.requestLog!.state.ok, false);
  rmSync(join(root, 'data'));
  // Bounded: the writer retries opening once a second; each poll sends one request.
  await pollUntil('the request log to write again', async () => {
    await chat(lab, coding());
    await lab.svc.requestLog!.drained();
    return lab.svc.requestLog!.state.ok ? true : undefined;
  }, { tries: 40, everyMs: 100 });
  assert.ok(count(join(root, 'data', 'requests.db')) >= 1);
  assert.equal(await metric(/^homelab_router_request_log_up (\d+)/m), 1);
});

test('request log – retention deletes old rows, payloads and rollups in chunks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-retention-'));
  const db = new Database(join(dir, 'requests.db'));
  configureWriter(db);
  migrate(db);
  const w = new LogWriter(db);
  const now = Date.now();
  const day = 86_400_000;
  const cfg: WriterConfig = { ...CFG, request_log: { ...CFG.request_log, store_payloads: true } };
  const old = Array.from({ length: 2_500 }, (_, i) => record(i, now - 40 * day, { payload: { request: '{"messages":[]}', response: null } }));
  const mid = Array.from({ length: 10 }, (_, i) => record(10_000 + i, now - 10 * day, { payload: { request: '{"messages":[]}', response: 'ok' } }));
  const fresh = Array.from({ length: 10 }, (_, i) => record(20_000 + i, now - 1_000, { payload: { request: '{"messages":[]}', response: 'ok' } }));
  w.write(old, cfg);
  w.write(mid, cfg);
  w.write(fresh, cfg);
  const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  const first = w.retentionStep(cfg.request_log, now);
  assert.ok(first >= RETENTION_CHUNK);
  assert.equal(n('SELECT count(*) AS n FROM requests'), 2_520 - RETENTION_CHUNK, 'one chunk went first');
  while (w.retentionStep(cfg.request_log, now) > 0);
  assert.equal(n('SELECT count(*) AS n FROM requests'), 20);
  assert.equal(n('SELECT count(*) AS n FROM payloads'), 10, 'payloads kept 7 days');
  assert.equal(n("SELECT count(*) AS n FROM rollup_hour WHERE dim = 'route'"), 3, 'hourly rollups outlive the rows');
  assert.equal(n("SELECT count(*) AS n FROM rollup_minute WHERE dim = 'route'"), 1, 'minute rollups are kept two days');
  db.close();
});

test('request log – SIGTERM on a real serve writes every queued row before it exits', async (t) => {
  const lab = await startLab({ sim: { 'ubuntu-4090': { latencyMs: 200 } } });
  t.after(() => lab.close());
  const dir = mkdtempSync(join(tmpdir(), 'hr-sigterm-'));
  const policyPath = join(dir, 'routing_policy.yaml');
  writeFileSync(policyPath, lab.policyYaml);
  const router = await startServe(['--policy', policyPath, '--listen', '127.0.0.1:0'], cliEnv({ HOMELAB_ROUTER_DATA_DIR: join(dir, 'data'), HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs') }));
  t.after(() => router.stop());
  const post = (i: number) =>
    fetch(`${router.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `term-${i}` }, body: JSON.stringify(pinned('homelab/fast', `classify ${i}`)) }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });
  // 100 answered just before the signal (8 at a time: the route's slots), 8 still in flight when it arrives.
  const before: number[] = [];
  for (let i = 0; i < 100; i += 10) before.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => post(i + j)))));
  const inFlight = Array.from({ length: 8 }, (_, i) => post(100 + i));
  await pollUntil('the 8 requests to reach the upstream', () => (lab.sims['ubuntu-4090']!.inFlight() >= 8 ? true : undefined), { tries: 200, everyMs: 10 });
  await router.stop();
  const after = await Promise.all(inFlight);
  assert.deepEqual([...new Set([...before, ...after])], [200]);
  const db = new Database(join(dir, 'data', 'requests.db'), { readonly: true });
  t.after(() => db.close());
  assert.equal((db.prepare("SELECT count(DISTINCT request_id) AS n FROM requests WHERE request_id LIKE 'term-%'").get() as { n: number }).n, 108);
  assert.ok(existsSync(join(dir, 'data', 'requests.db')));
});

test('request log – the queue is bounded: past its size the oldest rows are dropped and counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-queue-'));
  const policy = parsePolicyText(readFileSync(SHIPPED_POLICY, 'utf8'), 'shipped');
  const metrics = new RouterMetrics(() => ({ all: () => [] }) as never, { processMetrics: false });
  const log = new RequestLog({ path: join(dir, 'requests.db'), policy: () => policy, metrics, log: pino({ level: 'silent' }), queueMax: 10 });
  // 25 rows within one tick: nothing reaches the worker before the queue overflows.
  for (let i = 0; i < 25; i++) log.write(record(i));
  await log.drained();
  await log.close();
  const db = new Database(join(dir, 'requests.db'), { readonly: true });
  const ids = (db.prepare('SELECT request_id FROM requests ORDER BY id').all() as Array<{ request_id: string }>).map((r) => r.request_id);
  db.close();
  assert.deepEqual(ids, Array.from({ length: 10 }, (_, i) => `rec-${15 + i}`), 'the newest 10 are kept');
  assert.equal((await metrics.requestLogDropped.get()).values.find((v) => v.labels.reason === 'queue_full')?.value, 15);
  assert.equal((await metrics.requestLogWritten.get()).values[0]?.value, 10);
});

test('request log – rows held back while the worker has two batches are all written, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-held-'));
  const policy = parsePolicyText(readFileSync(SHIPPED_POLICY, 'utf8'), 'shipped');
  const metrics = new RouterMetrics(() => ({ all: () => [] }) as never, { processMetrics: false });
  const log = new RequestLog({ path: join(dir, 'requests.db'), policy: () => policy, metrics, log: pino({ level: 'silent' }) });
  // Within one tick: two full batches go to the worker, the third waits for an acknowledgement,
  // and the rows after it wait with it.
  const count = 2 * BATCH_MAX + BATCH_MAX + 137;
  for (let i = 0; i < count; i++) log.write(record(i));
  assert.equal((await metrics.requestLogQueued.get()).values[0]?.value, BATCH_MAX + 137, 'what the worker cannot take yet waits here');
  await log.drained();
  await log.close();
  const db = new Database(join(dir, 'requests.db'), { readonly: true });
  const ids = (db.prepare('SELECT request_id FROM requests ORDER BY id').all() as Array<{ request_id: string }>).map((r) => r.request_id);
  db.close();
  assert.deepEqual(ids, Array.from({ length: count }, (_, i) => `rec-${i}`));
  assert.equal((await metrics.requestLogWritten.get()).values[0]?.value, count);
  assert.equal((await metrics.requestLogDropped.get()).values.length, 0);
});

test('request log – rows held back while the worker is stuck go out at its acknowledgement, with no new row to push them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-stuck-'));
  const path = join(dir, 'requests.db');
  const policy = parsePolicyText(readFileSync(SHIPPED_POLICY, 'utf8'), 'shipped');
  const metrics = new RouterMetrics(() => ({ all: () => [] }) as never, { processMetrics: false });
  const log = new RequestLog({ path, policy: () => policy, metrics, log: pino({ level: 'silent' }) });
  await pollUntil('requests.db open', () => (log.state.ok ? true : undefined), { everyMs: 20 });
  // Another connection takes the write lock: the worker's next transaction waits (busy_timeout).
  const blocker = new Database(path);
  blocker.exec('BEGIN IMMEDIATE');
  try {
    for (let i = 0; i < 2 * BATCH_MAX; i++) log.write(record(i)); // two batches, both at the worker
    for (let i = 2 * BATCH_MAX; i < 2 * BATCH_MAX + 300; i++) log.write(record(i));
    // Their timer fires, finds the worker holding two batches, and leaves the 300 held.
    await pollUntil('300 rows held', async () => ((await metrics.requestLogQueued.get()).values[0]?.value === 300 ? true : undefined), { everyMs: 20 });
  } finally {
    blocker.exec('COMMIT');
    blocker.close();
  }
  const reader = new Database(path, { readonly: true });
  const total = () => (reader.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n;
  await pollUntil('every row written', () => (total() === 2 * BATCH_MAX + 300 ? true : undefined), { everyMs: 50 });
  reader.close();
  assert.equal((await metrics.requestLogDropped.get()).values.length, 0);
  await log.close();
});
