// `node --import tsx bench/request-log-pipeline.ts`: what the request log costs per row, in CPU,
// on each side of the thread boundary, without HTTP around it. The router's own RequestLog
// (router/reqlog/request-log.ts, with its worker and a real requests.db in a scratch directory)
// is handed router-shaped records at a steady rate, in steps of 10 ms, as a router at that
// request rate would; the same pacing without the log is the baseline. CPU is read per thread
// from /proc (Linux): the main thread's, and the rest of the process's (the log's worker, V8's
// helpers). Other processes on the machine slow these threads down but add nothing to them, so
// the figures hold on a shared machine better than requests per second do.
//
// Flags: --rate N (rows per second, 3000)  --seconds S (per run, 10)  --runs N (3, interleaved)
// Result: printed, and bench/results/request-log-pipeline-<date>.md.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { RequestRecord } from '../router/obs/request-record.ts';
import { RouterMetrics } from '../router/obs/metrics.ts';
import { parsePolicyText } from '../router/policy/load.ts';
import { RequestLog } from '../router/reqlog/request-log.ts';

const { values: flags } = parseArgs({ options: { rate: { type: 'string', default: '3000' }, seconds: { type: 'string', default: '10' }, runs: { type: 'string', default: '3' } } });
const RATE = Math.max(100, Number(flags.rate) || 3000);
const SECONDS = Math.max(1, Math.min(60, Number(flags.seconds) || 10));
const RUNS = Math.max(1, Math.min(10, Number(flags.runs) || 3));
const STEP_MS = 10;

const policy = parsePolicyText(readFileSync(new URL('../routing_policy.yaml', import.meta.url), 'utf8'), 'shipped');
const buckets = Object.keys(policy.doc.buckets);

/** A record as the router builds one for the bench's 1 KB chat request (scores for every bucket). */
function record(i: number): RequestRecord {
  const now = Date.now();
  return {
    request_id: `019ae${now.toString(16)}-${i.toString(16).padStart(8, '0')}`, ts: now, endpoint: 'chat', client: '127.0.0.1', key_name: null, user_agent: null,
    model: 'homelab/auto', bucket: 'general_chat', route: 'ubuntu-6000', served_model: 'glm-4.5-air-awq', reason: 'bucket_match', fallback_path: 'ubuntu-6000',
    status: 200, error_code: null, stream: false, ttfb_ms: 1, duration_ms: 2, prompt_tokens: 250, completion_tokens: 20, estimated_tokens: 262,
    attempts: [{ route: 'ubuntu-6000', outcome: 'ok', ms: 2, status: 200 }],
    decision: { scores: Object.fromEntries(buckets.map((b, k) => [b, (k * 0.37 + i) / 3])), matched: { coding: ['python', 'postgres'], general_chat: ['what should'] }, pinned: false, has_image: false, size_tier: 'small', intended_route: 'ubuntu-6000', skipped: [] },
    policy_hash: policy.hash, synthetic: false,
  };
}

/** CPU µs of the main thread and of the whole process (Linux /proc; clock ticks). */
const TICK_US = 10_000;
function cpu(): { main: number; all: number } {
  const read = (path: string) => {
    const stat = readFileSync(path, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  };
  return { main: read(`/proc/self/task/${process.pid}/stat`), all: read('/proc/self/stat') };
}

async function run(withLog: boolean): Promise<{ main: number; other: number; rows: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hr-bench-pipeline-'));
  const metrics = new RouterMetrics(() => ({ all: () => [] }) as never, { processMetrics: false });
  const log = withLog ? new RequestLog({ path: join(dir, 'requests.db'), policy: () => policy, metrics, log: pino({ level: 'silent' }) }) : null;
  // The worker loaded, the database open and migrated, and a first batch written before the clock starts.
  if (log) {
    for (let k = 0; k < 500; k++) log.write(record(-1 - k));
    await log.drained();
  }
  await new Promise((r) => setTimeout(r, 300));
  const perStep = Math.round((RATE * STEP_MS) / 1000);
  const steps = Math.round((SECONDS * 1000) / STEP_MS);
  const sink: RequestRecord[] = [];
  const c0 = cpu();
  const t0 = Date.now();
  let rows = 0;
  for (let s = 0; s < steps; s++) {
    for (let k = 0; k < perStep; k++) {
      const r = record(rows++);
      if (log) log.write(r);
      else sink.push(r), sink.length > 64 && sink.splice(0, 32);
    }
    const wait = t0 + (s + 1) * STEP_MS - Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  }
  await log?.drained();
  const c1 = cpu();
  await log?.close();
  rmSync(dir, { recursive: true, force: true });
  const written = log ? ((await metrics.requestLogWritten.get()).values[0]?.value ?? 0) - 500 : rows;
  if (written !== rows) throw new Error(`${rows} rows handed to the log, ${written} written`);
  return { main: c1.main - c0.main, other: c1.all - c1.main - (c0.all - c0.main), rows };
}

const runs: Array<{ on: Awaited<ReturnType<typeof run>>; off: Awaited<ReturnType<typeof run>> }> = [];
for (let i = 0; i < RUNS; i++) {
  const off = await run(false);
  const on = await run(true);
  runs.push({ on, off });
  const perRow = (x: number) => (x / on.rows).toFixed(1);
  console.log(`run ${i + 1}/${RUNS}: ${on.rows} rows; main thread ${perRow(on.main - off.main)} µs/row, other threads ${perRow(on.other - off.other)} µs/row`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const main = median(runs.map((r) => (r.on.main - r.off.main) / r.on.rows));
const other = median(runs.map((r) => (r.on.other - r.off.other) / r.on.rows));
const summary =
  `Request log pipeline, ${RATE} rows/s for ${SECONDS} s, median of ${RUNS} runs (${cpus().length} cores, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}): ` +
  `main thread ${main.toFixed(1)} µs/row, worker and other threads ${other.toFixed(1)} µs/row, total ${(main + other).toFixed(1)} µs/row; every row written.`;
console.log(`\n${summary}`);
const date = new Date().toISOString();
const results = new URL('./results/', import.meta.url);
mkdirSync(results, { recursive: true });
writeFileSync(
  new URL(`request-log-pipeline-${date.replace(/[:]/g, '-').replace(/\..*$/, '')}.md`, results),
  [
    `# Request log pipeline — ${date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`node --import tsx bench/request-log-pipeline.ts --rate ${RATE} --seconds ${SECONDS} --runs ${RUNS}\``,
    '',
    '| run | rows | main thread µs/row | worker and other threads µs/row |',
    '|---|---:|---:|---:|',
    ...runs.map((r, i) => `| ${i + 1} | ${r.on.rows} | ${((r.on.main - r.off.main) / r.on.rows).toFixed(1)} | ${((r.on.other - r.off.other) / r.on.rows).toFixed(1)} |`),
    '',
    summary,
    '',
  ].join('\n'),
);
