// `npm run bench:request-log`: the request log at size. Generates N rows (default 1,000,000)
// spread over 30 days through the writer the router uses (router/reqlog/writer.ts: batches of
// 500 per transaction, rollups in the same transaction, cost priced per row), then times the
// reads the admin API serves, on the same read-only connection type the router uses:
//   analytics   30d / 7d by route, client, model and status; 24h and 1h by route
//   newest 50   unfiltered, and with each one filter (route, bucket, client, model, status
//               class, exact status (a common, a rare and an absent one), reason, request-id
//               prefix, a time window), and page 2
//   detail      one request by id
//   retention   one chunk of old rows deleted (what the writer does between batches)
// and the file size per million rows. Each read is run 7 times after one warm-up; the median
// and the slowest are reported. Everything happens in a scratch directory that is deleted.
//
// Flags: --rows N (1000000)  --keep (leave the scratch directory)
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import type { RequestRecord } from '../router/obs/request-record.ts';
import { RequestLogReader, parseFilters, type Range } from '../router/reqlog/reader.ts';
import { configureWriter, migrate, type Dimension } from '../router/reqlog/schema.ts';
import { LogWriter, RETENTION_CHUNK, type WriterConfig } from '../router/reqlog/writer.ts';

const { values: flags } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, keep: { type: 'boolean', default: false } } });
const ROWS = Math.max(1_000, Number(flags.rows) || 1_000_000);
const BATCH = 500;
const DAY = 86_400_000;
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const ROUTES = [['ubuntu-4090', 0.35, 'qwen2.5-vl-7b-router-awq'], ['ubuntu-6000', 0.3, 'glm-4.5-air-awq'], ['spark', 0.2, 'qwen3.6-35b-a3b-fp8'], ['win-5090', 0.15, 'gemma-4-31b']] as const;
const BUCKETS = ['camera', 'vision', 'coding', 'agentic', 'reasoning', 'fast', 'notification', 'medium_summary', 'utility', 'general_chat', 'unknown'];
const CLIENTS = ['cursor', 'opencode', 'home-assistant', 'frigate', 'agent', 'scripts', '192.168.1.20', '192.168.1.31', '192.168.1.44', '10.0.0.7', 'n8n', 'open-webui'];
const MODELS = [['homelab/auto', 0.7], ['homelab/code', 0.1], ['homelab/vision', 0.08], ['homelab/fast', 0.07], ['glm-4.5-air-awq', 0.05]] as const;
const CFG: WriterConfig = {
  request_log: { enabled: true, retention_days: 30, rollup_retention_days: 400, store_payloads: false, payload_retention_days: 7, payload_max_bytes: 1 << 20 },
  pricing: { reference: { 'ubuntu-6000': 'anthropic/claude-sonnet-4-5', spark: 'anthropic/claude-sonnet-4-5', 'win-5090': 'openai/gpt-4o-mini' }, overrides: {} },
};

// A fixed-seed generator: the same rows on every run.
let seed = 42;
function rand(): number {
  seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
  return seed / 0x7fffffff;
}
function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}
function weighted<T extends readonly [string, number, ...unknown[]]>(xs: readonly T[]): T {
  let r = rand();
  for (const x of xs) if ((r -= x[1]) <= 0) return x;
  return xs[0]!;
}

function status(): [number, string | null] {
  const r = rand();
  if (r < 0.94) return [200, null];
  if (r < 0.96) return [400, 'invalid_request'];
  if (r < 0.97) return [404, 'model_not_found'];
  if (r < 0.98) return [499, null];
  if (r < 0.995) return [503, 'upstream_saturated'];
  return [502, 'upstream_error'];
}

function row(i: number, now: number): RequestRecord {
  const [route, , served] = weighted(ROUTES);
  const bucket = pick(BUCKETS);
  const [code, error] = status();
  const ok = code === 200;
  const duration = Math.round(50 + rand() ** 3 * 30_000);
  const prompt = Math.round(200 + rand() ** 2 * 30_000);
  return {
    request_id: `${(now - 30 * DAY + i).toString(36)}-${i.toString(36).padStart(6, '0')}-${Math.floor(rand() * 1e9).toString(36)}`,
    ts: now - 30 * DAY + Math.floor((i / ROWS) * 30 * DAY),
    endpoint: rand() < 0.97 ? 'chat' : 'embeddings',
    client: pick(CLIENTS),
    user_agent: pick(['opencode/1.2.3', 'OpenAI/Python 1.99.1', 'HomeAssistant/2026.11', 'curl/8.5.0']),
    model: weighted(MODELS)[0],
    bucket,
    route,
    served_model: served,
    reason: rand() < 0.9 ? 'bucket_match' : pick(['default_bucket', 'pinned_model', 'image', 'size_medium', 'ubuntu-6000_saturated', 'spark_outage']),
    fallback_path: rand() < 0.95 ? route : `ubuntu-6000>${route}`,
    status: code,
    error_code: error,
    stream: rand() < 0.6,
    ttfb_ms: ok ? Math.round(duration * 0.1) : null,
    duration_ms: duration,
    prompt_tokens: ok ? prompt : null,
    completion_tokens: ok ? Math.round(20 + rand() * 1_500) : null,
    estimated_tokens: Math.round(prompt * 1.05),
    attempts: [{ route, outcome: ok ? 'ok' : 'outage', ms: duration, status: code }],
    decision: { scores: { [bucket]: 2.5, general_chat: 0.5 }, matched: { [bucket]: ['refactor', 'pytest'] }, pinned: false, has_image: bucket === 'vision', size_tier: 'small', intended_route: route, skipped: [] },
    policy_hash: 'sha256:4f2a9c0d1e',
    synthetic: false,
  };
}

function timeIt(fn: () => unknown, runs = 7): { medianMs: number; maxMs: number } {
  fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    fn();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { medianMs: ms[Math.floor(ms.length / 2)]!, maxMs: ms.at(-1)! };
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), 'hr-bench-reqlog-'));
  if (!flags.keep) process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'requests.db');
  const db = new Database(path);
  configureWriter(db);
  migrate(db);
  const writer = new LogWriter(db);
  const now = Date.now();
  const t0 = Date.now();
  for (let i = 0; i < ROWS; i += BATCH) {
    const batch: RequestRecord[] = [];
    for (let j = i; j < Math.min(ROWS, i + BATCH); j++) batch.push(row(j, now));
    writer.write(batch, CFG);
    if (i % 100_000 === 0 && i > 0) process.stderr.write(`  ${i.toLocaleString('en')} rows, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  const loadS = (Date.now() - t0) / 1000;
  // Steady state: what retention keeps (per-minute rollups for two days), freed pages returned.
  while (writer.retentionStep({ ...CFG.request_log, retention_days: 31 }, now) > 0);
  db.pragma('incremental_vacuum');
  db.pragma('wal_checkpoint(TRUNCATE)');
  const bytes = statSync(path).size + (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);
  const rollupRows = (db.prepare('SELECT (SELECT count(*) FROM rollup_hour) + (SELECT count(*) FROM rollup_minute) + (SELECT count(*) FROM rollup_day) AS n').get() as { n: number }).n;

  const reader = new RequestLogReader(path);
  const reads: Array<[string, { medianMs: number; maxMs: number }]> = [];
  for (const [range, by] of [['30d', 'route'], ['30d', 'client'], ['30d', 'model'], ['30d', 'status'], ['7d', 'route'], ['24h', 'route'], ['1h', 'client']] as Array<[Range, Dimension]>) {
    reads.push([`analytics ${range} by ${by}`, timeIt(() => reader.analytics(range, by, now))]);
  }
  const sample = reader.list(parseFilters({ limit: '1' })).requests[0]!;
  const filters: Array<[string, Record<string, string>]> = [
    ['newest 50, no filter', {}],
    ['newest 50, route', { route: 'spark' }],
    ['newest 50, bucket', { bucket: 'coding' }],
    ['newest 50, client', { client: 'frigate' }],
    ['newest 50, model', { model: 'homelab/vision' }],
    ['newest 50, status=5xx', { status: '5xx' }],
    ['newest 50, status=4xx', { status: '4xx' }],
    ['newest 50, status=200', { status: '200' }],
    ['newest 50, status=503 (1.5% of rows)', { status: '503' }],
    ['newest 50, status=502 (no rows)', { status: '502' }],
    ['newest 50, reason', { reason: 'spark_outage' }],
    ['newest 50, q (id prefix)', { q: sample.request_id.slice(0, 8) }],
    ['newest 50, from..to (one day, a week ago)', { from: String(now - 8 * DAY), to: String(now - 7 * DAY) }],
  ];
  for (const [name, q] of filters) reads.push([name, timeIt(() => reader.list(parseFilters(q)))]);
  const page1 = reader.list(parseFilters({ route: 'win-5090' }));
  reads.push(['page 2 (cursor), route', timeIt(() => reader.list(parseFilters({ route: 'win-5090', cursor: page1.next_cursor! })))]);
  reads.push(['detail by request id', timeIt(() => reader.get(sample.request_id))]);
  reader.close();
  // Retention: the oldest rows are older than 29 days when retention_days is 29.
  const retention = timeIt(() => writer.retentionStep({ ...CFG.request_log, retention_days: 29 }, now), 3);
  db.close();

  const mb = bytes / 2 ** 20;
  const lines = [
    `# Request log at ${ROWS.toLocaleString('en')} rows — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`npm run bench:request-log -- --rows ${ROWS}\` (Node ${process.version}; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores at the end). Rows over 30 days, 4 routes, 11 buckets, 12 clients, 5 models, 6% errors.`,
    '',
    `- written in ${loadS.toFixed(1)} s (${Math.round(ROWS / loadS).toLocaleString('en')} rows/s through the writer: batches of ${BATCH}, rollups and pricing included)`,
    `- file: ${mb.toFixed(0)} MB, **${((mb * 1_000_000) / ROWS).toFixed(0)} MB per million rows** (${Math.round(bytes / ROWS)} B/row, 8 indices and ${rollupRows.toLocaleString('en')} rollup rows included: daily and hourly for 30 days, per minute for the last 2)`,
    `- retention: one step (a chunk of ${RETENTION_CHUNK} old rows and their index entries) in ${retention.medianMs.toFixed(1)} ms (median of 3)`,
    '',
    '| read | median | slowest of 7 | budget |',
    '|---|---:|---:|---|',
    ...reads.map(([name, r]) => `| ${name} | ${r.medianMs.toFixed(2)} ms | ${r.maxMs.toFixed(2)} ms | ${name.startsWith('analytics 30d') ? (r.medianMs < 100 ? '< 100 ms ✅' : '< 100 ms ❌') : name.startsWith('newest 50') ? (r.medianMs < 50 ? '< 50 ms ✅' : '< 50 ms ❌') : ''} |`),
  ];
  const text = lines.join('\n') + '\n';
  console.log(text);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'request-log-latest.md'), text);
}

main();
