// `npm run soak`: a bounded chaos run against the real router process.
//
// Four simulated upstreams (one per route of the shipped policy) run in this process; the
// router runs as a child (`homelab-router serve`) so its RSS is its own and the load generator
// does not share its heap or event loop. A bounded pool of clients sends a mix of streamed and
// non-streamed requests for every bucket, pins and header overrides, bad input and client
// aborts, while faults are pushed onto the upstreams, one upstream at a time is stopped and
// restarted and routes are drained and undrained.
//
// What must hold at the end (exit 1 otherwise):
//   lost = 0      every request got a complete answer (2xx body, a stream ending in [DONE] or
//                 an `event: error`), a clean error response, or the abort this client chose.
//   leaked = 0    every route's in_flight and queued return to 0 once traffic stops.
//   peak <= slots the most generations an upstream ever ran at once. The simulators take far
//                 more than their route's slots, so the peak is what the router let through.
//   no generation left running upstream, no error logged by the router, the router still up
//   and exiting cleanly on SIGTERM.
//
// Flags: --requests N (20000) --seconds S (120, dispatch window) --concurrency C (64)
//        --seed X (random) --out PATH (bench/results/soak-latest.md) --calm (no chaos: baseline)
//        --replicas N (1): with N > 1, the soak across replicas of bench/soak-cluster.ts instead
//        (defaults there: --requests 3000 --seconds 40 --concurrency 24,
//        out bench/results/soak-cluster-latest.md)
// Everything listens on and talks to 127.0.0.1 only.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { Agent, request } from 'undici';
import { startSimUpstream, type Fault, type SimUpstream } from '../router/demo/sim-upstream.ts';
import { mulberry32 } from './seeded-random.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(REPO, 'bin/homelab-router.js');
const SHIPPED = join(REPO, 'routing_policy.yaml');

// ---------------------------------------------------------------------------------------------
// Settings

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '120' },
    concurrency: { type: 'string', default: '64' },
    seed: { type: 'string' },
    out: { type: 'string' },
    replicas: { type: 'string', default: '1' },
    // The same load with no faults, stops, drains or client aborts: the baseline to compare with.
    calm: { type: 'boolean', default: false },
  },
});

function positiveInt(name: string, v: string | undefined, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    console.error(`--${name} must be an integer from 1 to ${max}`);
    process.exit(2);
  }
  return n;
}

const REPLICAS = positiveInt('replicas', flags.replicas, 9);
const argGiven = (name: string): boolean => process.argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
const TOTAL = positiveInt('requests', REPLICAS > 1 && !argGiven('requests') ? '3000' : flags.requests, 1_000_000);
const SECONDS = positiveInt('seconds', REPLICAS > 1 && !argGiven('seconds') ? '40' : flags.seconds, 3600);
const CONCURRENCY = positiveInt('concurrency', REPLICAS > 1 && !argGiven('concurrency') ? '24' : flags.concurrency, 512);
const SEED = flags.seed !== undefined ? positiveInt('seed', flags.seed, 2 ** 31 - 1) : 1 + Math.floor(Math.random() * (2 ** 31 - 2));
const OUT = flags.out ?? join(REPO, REPLICAS > 1 ? 'bench/results/soak-cluster-latest.md' : 'bench/results/soak-latest.md');
const CALM = flags.calm === true;

// Small timeouts so a hang, a stall or a queue wait resolves in about a second, not minutes.
const REQUEST_TIMEOUT_MS = 5_000;
const ROUTE_TIMEOUT_MS = 1_000;
const STREAM_IDLE_MS = 1_000;
const QUEUE_TIMEOUT_MS = 200;
// A request with no complete answer this long after it was sent is lost: the router's own
// deadline is REQUEST_TIMEOUT_MS, the rest is slack for a loaded two-core machine.
const LOST_AFTER_MS = REQUEST_TIMEOUT_MS + 5_000;
// Far above any route's slots, so the simulators never queue and their peak is the router's.
const SIM_SLOTS = 1_000;
const SETTLE_MS = 15_000;

// Plausible pacing, scaled down so a request holds its slot for tens of milliseconds.
const PACE: Record<string, { latencyMs: number; tokenIntervalMs: number }> = {
  'ubuntu-4090': { latencyMs: 5, tokenIntervalMs: 3 },
  'ubuntu-6000': { latencyMs: 10, tokenIntervalMs: 5 },
  spark: { latencyMs: 15, tokenIntervalMs: 6 },
  'win-5090': { latencyMs: 10, tokenIntervalMs: 4 },
};

// ---------------------------------------------------------------------------------------------

const rand = mulberry32(SEED);
const chance = (p: number): boolean => rand() < p;
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const between = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The request mix

const IMAGE = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const CAMERA_SCHEMA = { type: 'object', properties: { person: { type: 'boolean' }, summary: { type: 'string' } }, required: ['person'] };
const LONG_TEXT = 'The quarterly meeting notes cover budget, hiring, the roadmap and the incident review. '.repeat(420);

const PROMPTS: Record<string, readonly string[]> = {
  coding: [
    'Refactor this python function and add pytest tests',
    'Why does my TypeScript build fail with a TypeError in the async callback?',
    'Write a bash script that greps the nginx logs for 500 errors',
    'Fix the bug in this code:\n```js\nconst x = [1,2,3].map(n => n * 2\n```',
  ],
  chat: ['Rewrite this email to sound more polite', 'Translate this paragraph to Spanish', 'hello, how are you today?', 'Tell me a joke about cats'],
  reasoning: ['Compare event sourcing and CRUD: what are the trade-offs?', 'Think carefully about the risks of running the database on the same host', 'Prove that there are infinitely many primes'],
  fast: ['Classify the sentiment of this review as JSON: "great product, slow shipping"', 'Extract the named entities as a JSON array: Alice met Bob in Paris', 'Answer only yes or no: is this spam?'],
  summary: ['Summarize this article in three bullet points', 'tl;dr of this email thread please'],
  notification: ['Write a push notification for the washing machine finishing', 'Short SMS alert text: garage door left open'],
};

// Weighted roughly by each route's capacity: win-5090 has 3 slots and takes three buckets.
const AUTO_BUCKETS = ['coding', 'coding', 'coding', 'reasoning', 'reasoning', 'fast', 'fast', 'fast', 'fast', 'chat', 'chat', 'summary', 'notification'] as const;

type AbortPlan = 'none' | 'early' | 'mid';

interface Planned {
  kind: string;
  stream: boolean;
  body: string;
  headers: Record<string, string>;
  abort: AbortPlan;
}

function user(text: string): { role: string; content: string } {
  return { role: 'user', content: text };
}

function planRequest(): Planned {
  const stream = chance(0.5);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  let body: Record<string, unknown> = { model: 'homelab/auto', messages: [user(pick(PROMPTS.chat!))] };
  let kind: string;
  const r = rand();
  if (r < 0.5) {
    // Auto routing across every bucket.
    const bucket = pick(AUTO_BUCKETS);
    kind = `auto:${bucket}`;
    body.messages = [user(pick(PROMPTS[bucket]!))];
  } else if (r < 0.58) {
    kind = 'image';
    body.messages = [{ role: 'user', content: [{ type: 'text', text: 'What do you see in this picture?' }, { type: 'image_url', image_url: { url: IMAGE } }] }];
  } else if (r < 0.64) {
    // Fail-closed camera event: validated, escalated or answered synthetically.
    kind = 'camera';
    body.messages = [user('Frigate: motion detected on the driveway camera, person detected?')];
    body.response_format = { type: 'json_schema', json_schema: { name: 'camera_event', schema: CAMERA_SCHEMA } };
  } else if (r < 0.68) {
    kind = 'agentic';
    body.messages = [user('Run the tests in the repo and fix what fails')];
    body.tools = [{ type: 'function', function: { name: 'run', parameters: { type: 'object', properties: {} } } }];
  } else if (r < 0.76) {
    kind = 'pin:model';
    body.model = pick(['homelab/code', 'homelab/reasoning', 'homelab/chat', 'homelab/fast', 'gemma-4-31b', 'qwen3.6-35b-a3b-fp8', 'glm-4.5-air-awq', 'qwen2.5-vl-7b-router-awq']);
  } else if (r < 0.82) {
    kind = 'pin:route-header';
    headers['x-homelab-route'] = pick(['ubuntu-4090', 'ubuntu-6000', 'spark', 'win-5090']);
  } else if (r < 0.87) {
    kind = 'bucket-header';
    headers['x-homelab-bucket'] = pick(['coding', 'reasoning', 'fast', 'general_chat', 'utility', 'medium_summary', 'notification']);
  } else if (r < 0.9) {
    kind = 'metadata-bucket';
    body.metadata = { bucket: pick(['coding', 'reasoning', 'fast']) };
  } else if (r < 0.92) {
    // Size promotion: ~9 000 estimated tokens move a classification from ubuntu-4090 to
    // ubuntu-6000 (medium); ~27 000 move a summary from win-5090 to spark (large).
    const large = chance(0.5);
    kind = large ? 'size:large' : 'size:medium';
    body.messages = [user(large ? `Summarize these meeting notes: ${LONG_TEXT.repeat(3)}` : `Classify the sentiment of these notes as JSON: ${LONG_TEXT}`)];
  } else if (r < 0.95) {
    kind = 'conversation';
    body.messages = [
      { role: 'system', content: 'You are terse.' },
      user('Write a python function to parse a CSV file'),
      { role: 'assistant', content: 'def parse(path): ...' },
      user('now add error handling'),
    ];
  } else {
    // Bad input: each must get a clean 4xx, never reach an upstream, never hang.
    const bad = between(0, 4);
    kind = `bad:${['model', 'messages', 'json', 'route', 'bucket'][bad]}`;
    if (bad === 0) body.model = 'no-such-model';
    if (bad === 1) body.messages = [];
    if (bad === 3) headers['x-homelab-route'] = 'no-such-route';
    if (bad === 4) headers['x-homelab-bucket'] = 'no-such-bucket';
    if (bad === 2) return { kind, stream, body: '{"model": "homelab/auto", "messages": [', headers, abort: 'none' };
  }
  // n choices take n slots (capped at the route's): wide requests mixed with narrow ones.
  if (chance(0.04)) {
    body.n = pick([2, 3, 5]);
    kind += `+n${body.n}`;
  }
  if (stream) {
    body = { ...body, stream: true };
    if (chance(0.5)) body.stream_options = { include_usage: true };
  }
  const a = rand();
  const abort: AbortPlan = CALM ? 'none' : a < 0.05 ? 'early' : a < 0.1 ? 'mid' : 'none';
  return { kind, stream, body: JSON.stringify(body), headers, abort };
}

// Upstream replies: JSON for camera events most of the time, so fail-closed validation passes,
// escalates and falls back to the synthetic answer in a realistic proportion.
function simReply(model: string) {
  return (body: any): string => {
    if (body?.response_format?.type === 'json_schema') return rand() < 0.75 ? JSON.stringify({ person: rand() < 0.5, summary: 'someone on the driveway' }) : 'I think there is a person.';
    return `[${model}] ok`;
  };
}

function randomFault(): Fault {
  const r = rand();
  if (r < 0.14) return { kind: 'status', status: 500 };
  if (r < 0.24) return { kind: 'status', status: 502 };
  if (r < 0.36) return { kind: 'status', status: 429, headers: chance(0.5) ? { 'retry-after': '1' } : {} };
  if (r < 0.44) return { kind: 'loading' };
  if (r < 0.5) return { kind: 'cuda' };
  if (r < 0.58) return { kind: 'hang' };
  if (r < 0.7) return { kind: 'die_after', chunks: between(0, 4) };
  if (r < 0.78) return { kind: 'stall_after', chunks: between(0, 4) };
  if (r < 0.88) return { kind: 'refuse' };
  if (r < 0.94) return { kind: 'html', status: pick([502, 503, 504]) };
  return { kind: 'delay', ms: between(50, 400) };
}

// ---------------------------------------------------------------------------------------------
// The router child

interface RouterProc {
  base: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited(): boolean;
  stop(): Promise<number | null>;
}

async function startRouter(policyPath: string, env: NodeJS.ProcessEnv): Promise<RouterProc> {
  const child = spawn(process.execPath, [BIN, 'serve', '--policy', policyPath, '--listen', '127.0.0.1:0'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-1_000_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-100_000)));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc: RouterProc = {
    base: '',
    child,
    stdout: () => out,
    stderr: () => err,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop() {
      if (proc.exited()) return child.exitCode;
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exit;
      clearTimeout(force);
      return code;
    },
  };
  for (let i = 0; i < 300 && !proc.base; i++) {
    if (proc.exited()) throw new Error(`router exited at start\n${out}\n${err}`);
    for (const line of out.split('\n')) {
      try {
        const rec = JSON.parse(line) as { msg?: string; listen?: string };
        if (rec.msg === 'homelab-router listening' && rec.listen) proc.base = rec.listen;
      } catch {
        /* not a complete log line yet */
      }
    }
    if (!proc.base) await sleep(50);
  }
  if (!proc.base) {
    await proc.stop();
    throw new Error(`router did not log its listen address\n${out}\n${err}`);
  }
  return proc;
}

// ---------------------------------------------------------------------------------------------
// Outcomes

type Outcome = 'ok_2xx' | 'client_4xx' | 'unavailable_503' | 'other_5xx' | 'stream_error_event' | 'client_aborted' | 'lost';

const counts: Record<Outcome, number> = { ok_2xx: 0, client_4xx: 0, unavailable_503: 0, other_5xx: 0, stream_error_event: 0, client_aborted: 0, lost: 0 };
const lostWhy = new Map<string, number>();
const lostSamples: string[] = [];
const servedBy = new Map<string, number>();
const synthetic = { n: 0 };
/** Error responses by their envelope's code (upstream_saturated, upstream_unavailable, ...). */
const errorCodes = new Map<string, number>();
let noRetryAfter = 0;
/** Where our aborts landed: before the response headers (queued, or waiting upstream) or mid-body. */
const abortedAt = { before_headers: 0, mid_body: 0 };
let streamsSent = 0;
let abortsPlanned = 0;

function lose(why: string, sample: string): Outcome {
  lostWhy.set(why, (lostWhy.get(why) ?? 0) + 1);
  if (lostSamples.length < 10) lostSamples.push(`${why}: ${sample.slice(0, 300)}`);
  return 'lost';
}

/** The envelope's code when `text` is an OpenAI error envelope, else null. */
function errorEnvelopeCode(text: string): string | null {
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown; type?: unknown; code?: unknown } };
    return typeof j.error?.message === 'string' && typeof j.error.type === 'string' ? String(j.error.code) : null;
  } catch {
    return null;
  }
}

function headerOf(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

const agent = new Agent({ keepAliveTimeout: 2_000, connect: { timeout: 2_000 } });
const adminAgent = new Agent({ keepAliveTimeout: 2_000, connections: 4 });

async function sendOne(base: string, p: Planned): Promise<Outcome> {
  const ac = new AbortController();
  let weAborted = false;
  let timedOut = false;
  const timers: NodeJS.Timeout[] = [];
  const abortNow = (): void => {
    if (weAborted || timedOut) return;
    weAborted = true;
    ac.abort();
  };
  timers.push(
    setTimeout(() => {
      if (weAborted) return;
      timedOut = true;
      ac.abort();
    }, LOST_AFTER_MS),
  );
  if (p.abort === 'early') timers.push(setTimeout(abortNow, between(0, 150)));
  if (p.abort === 'mid' && !p.stream) timers.push(setTimeout(abortNow, between(10, 60)));
  let status = 0;
  let text = '';
  let ct = '';
  let retryAfter: string | undefined;
  let route = '?';
  try {
    const res = await request(`${base}/v1/chat/completions`, { method: 'POST', headers: p.headers, body: p.body, signal: ac.signal, dispatcher: agent, headersTimeout: LOST_AFTER_MS, bodyTimeout: LOST_AFTER_MS });
    status = res.statusCode;
    ct = headerOf(res.headers, 'content-type') ?? '';
    retryAfter = headerOf(res.headers, 'retry-after');
    route = headerOf(res.headers, 'x-homelab-route') ?? '?';
    if (headerOf(res.headers, 'x-homelab-synthetic') === '1') synthetic.n++;
    let first = true;
    for await (const chunk of res.body) {
      if (first && p.abort === 'mid' && p.stream) timers.push(setTimeout(abortNow, between(0, 8)));
      first = false;
      if (text.length < 200_000) text += (chunk as Buffer).toString('utf8');
    }
  } catch (err) {
    if (weAborted) {
      abortedAt[status === 0 ? 'before_headers' : 'mid_body']++;
      return 'client_aborted';
    }
    if (timedOut) return lose('no complete answer within the deadline', `${p.kind} stream=${p.stream} status=${status} got=${JSON.stringify(text.slice(-200))}`);
    const e = err as Error & { code?: string };
    return lose(`connection error ${e.code ?? e.name}`, `${p.kind} stream=${p.stream} status=${status}: ${e.message} got=${JSON.stringify(text.slice(-200))}`);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  // A body read to its end before our abort fired is a normal answer, judged as one.
  const outcome = judge(p, status, ct, text, retryAfter);
  if (outcome === 'ok_2xx') servedBy.set(route, (servedBy.get(route) ?? 0) + 1);
  return outcome;
}

function judge(p: Planned, status: number, ct: string, text: string, retryAfter: string | undefined): Outcome {
  if (status >= 200 && status < 300) {
    if (ct.includes('text/event-stream')) {
      if (!p.stream) return lose('stream for a non-stream request', p.kind);
      const trimmed = text.trimEnd();
      if (trimmed.endsWith('data: [DONE]')) return 'ok_2xx';
      if (/(^|\n)event: error\ndata: \{/.test(text) && trimmed.endsWith('}')) return 'stream_error_event';
      return lose('stream ended without [DONE] or an error event', `${p.kind}: ${JSON.stringify(text.slice(-200))}`);
    }
    if (p.stream) return lose('JSON answer to a stream request', `${p.kind} ${ct}`);
    try {
      const j = JSON.parse(text) as { choices?: unknown[] };
      if (Array.isArray(j.choices) && j.choices.length > 0) return 'ok_2xx';
    } catch {
      /* judged below */
    }
    return lose('2xx body is not a complete completion', `${p.kind}: ${JSON.stringify(text.slice(0, 200))}`);
  }
  const code = errorEnvelopeCode(text);
  if (code === null) return lose(`HTTP ${status} without an error envelope`, `${p.kind}: ${JSON.stringify(text.slice(0, 200))}`);
  errorCodes.set(`${status} ${code}`, (errorCodes.get(`${status} ${code}`) ?? 0) + 1);
  if (status >= 400 && status < 500) {
    if (!p.kind.startsWith('bad:')) return lose(`unexpected HTTP ${status}`, `${p.kind}: ${text.slice(0, 200)}`);
    return 'client_4xx';
  }
  if (status === 503) {
    if (retryAfter === undefined) noRetryAfter++;
    return 'unavailable_503';
  }
  return 'other_5xx';
}

// ---------------------------------------------------------------------------------------------
// Admin reads and sampling

interface UpstreamRow {
  route: string;
  in_flight: number;
  queued: number;
  slots: number;
  queue: number;
  healthy: boolean;
}

async function getJson(url: string, token?: string): Promise<any> {
  const res = await request(url, { dispatcher: adminAgent, headers: token ? { authorization: `Bearer ${token}` } : {}, headersTimeout: 5_000, bodyTimeout: 5_000, signal: AbortSignal.timeout(5_000) });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function upstreams(base: string, token: string): Promise<UpstreamRow[]> {
  return ((await getJson(`${base}/admin/upstreams`, token)) as { upstreams: UpstreamRow[] }).upstreams;
}

interface Memory {
  rss: number;
  heapUsed: number;
}

/** The router's resident set and V8 heap in use, from its own process metrics. */
async function memory(base: string): Promise<Memory> {
  const res = await request(`${base}/metrics`, { dispatcher: adminAgent, headersTimeout: 5_000, bodyTimeout: 5_000, signal: AbortSignal.timeout(5_000) });
  const text = await res.body.text();
  const read = (name: string): number => {
    const m = new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /metrics`);
    return Number(m[1]);
  };
  return { rss: read('homelab_router_process_resident_memory_bytes'), heapUsed: read('homelab_router_nodejs_heap_size_used_bytes') };
}

async function admin(base: string, token: string, method: 'POST' | 'DELETE', path: string): Promise<void> {
  const res = await request(`${base}${path}`, { method, dispatcher: adminAgent, headers: { authorization: `Bearer ${token}` }, headersTimeout: 5_000, bodyTimeout: 5_000, signal: AbortSignal.timeout(5_000) });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${method} ${path}: HTTP ${res.statusCode}`);
}

const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'hr-soak-'));
  const doc = loadYaml(readFileSync(SHIPPED, 'utf8')) as any;
  const sims: Record<string, SimUpstream> = {};
  const slots: Record<string, number> = {};
  for (const [name, route] of Object.entries<any>(doc.routes)) {
    sims[name] = await startSimUpstream({
      model: route.model,
      runtime: route.runtime === 'lmstudio' ? 'lmstudio' : 'vllm',
      slots: SIM_SLOTS,
      chunks: 8,
      ...(PACE[name] ?? { latencyMs: 10, tokenIntervalMs: 4 }),
      reply: simReply(route.model),
      slotLimit: route.slots,
    });
    slots[name] = route.slots;
    route.url = sims[name]!.url;
    route.timeout_ms = ROUTE_TIMEOUT_MS;
    route.queue_timeout_ms = QUEUE_TIMEOUT_MS;
    // Simulators, not machines: nothing for the watchdog to restart over SSH.
    route.recovery = { managed: false };
  }
  doc.hosts = {};
  doc.server = { ...doc.server, listen: '127.0.0.1:0', request_timeout_ms: REQUEST_TIMEOUT_MS, stream_idle_timeout_ms: STREAM_IDLE_MS };
  // Ejections, their back-off and slow start scaled to the half-second probe cadence: at the
  // shipped 30 s ejections, the fault rate below would keep every route out for most of a
  // short run, and the run would exercise little but fast 503s.
  doc.health = { interval_s: 0.5, timeout_ms: 500, unhealthy_after: 2, healthy_after: 1, ejection_base_s: 0.5, ejection_max_s: 5, slow_start_s: 1 };
  const policyPath = join(work, 'routing_policy.yaml');
  writeFileSync(policyPath, dumpYaml(doc));

  const token = randomBytes(16).toString('hex');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOMELAB_ROUTER_')) env[k] = v;
  Object.assign(env, { HOMELAB_ROUTER_LOG_DIR: join(work, 'logs'), HOMELAB_ROUTER_DATA_DIR: join(work, 'data'), HOMELAB_ROUTER_ADMIN_TOKEN: token });

  const router = await startRouter(policyPath, env);
  const base = router.base;
  const failures: string[] = [];
  let memBefore: Memory = { rss: 0, heapUsed: 0 };
  let memAfter: Memory = { rss: 0, heapUsed: 0 };
  let memLast: Memory = memBefore;
  let rssPeak = 0;
  const routerPeak: Record<string, { inFlight: number; queued: number }> = {};
  const simPeak: Record<string, number> = {};
  const notes: string[] = [];
  let sent = 0;
  let durationMs = 0;
  let leaked: UpstreamRow[] = [];
  let orphans: Record<string, number> = {};
  let sockets: Record<string, number> = {};
  let chaosStops = 0;
  let chaosDrains = 0;
  let faultsPushed = 0;
  try {
    for (let i = 0; i < 100; i++) {
      const rows = await upstreams(base, token).catch(() => []);
      if (rows.length > 0 && rows.every((r) => r.healthy)) break;
      await sleep(100);
    }
    memBefore = await memory(base);
    memLast = memBefore;
    rssPeak = memBefore.rss;
    console.log(`soak: router ${base} (pid ${router.child.pid}), ${TOTAL} requests, ${CONCURRENCY} clients, ${SECONDS} s cap, seed ${SEED}`);

    const started = Date.now();
    const stopAt = started + SECONDS * 1000;
    let running = true;

    const faultPending: Record<string, boolean> = {};
    const faultMark: Record<string, number> = Object.fromEntries(Object.keys(sims).map((n) => [n, 0]));
    const foldSimPeaks = (): void => {
      for (const [name, sim] of Object.entries(sims)) {
        simPeak[name] = Math.max(simPeak[name] ?? 0, sim.peakInFlight());
        // Each chat request takes the oldest queued fault, so one arrival since the push means it was used.
        if (sim.received.length > faultMark[name]!) faultPending[name] = false;
        faultMark[name] = 0;
        // Keeps the simulators' request log from growing for the whole run; the peak is folded first.
        sim.resetStats();
      }
    };

    // Router-side view, twice a second: in_flight never above slots, queued never above queue.
    const sampler = (async () => {
      let n = 0;
      while (running) {
        try {
          for (const r of await upstreams(base, token)) {
            const p = (routerPeak[r.route] ??= { inFlight: 0, queued: 0 });
            p.inFlight = Math.max(p.inFlight, r.in_flight);
            p.queued = Math.max(p.queued, r.queued);
          }
          if (n++ % 4 === 0) {
            memLast = await memory(base);
            rssPeak = Math.max(rssPeak, memLast.rss);
          }
        } catch (err) {
          if (!router.exited()) notes.push(`sampler: ${(err as Error).message}`);
        }
        foldSimPeaks();
        await sleep(500);
      }
    })();

    // One upstream at a time goes down for 0.5–2.5 s, every ~8 s.
    const stopper = (async () => {
      await sleep(3_000);
      while (running && !CALM) {
        const name = pick(Object.keys(sims));
        const sim = sims[name]!;
        chaosStops++;
        await sim.stop();
        await sleep(between(500, 2_500));
        await sim.restart();
        for (let waited = 0; running && waited < 8_000; waited += 250) await sleep(250);
      }
    })();

    // A route is drained for a second every ~6 s (pins still reach it, auto traffic spills).
    const drainer = (async () => {
      await sleep(2_000);
      while (running && !CALM) {
        const name = pick(Object.keys(sims));
        try {
          chaosDrains++;
          await admin(base, token, 'POST', `/admin/drain/${name}`);
          await sleep(1_000);
        } catch (err) {
          notes.push(`drain ${name}: ${(err as Error).message}`);
        } finally {
          await admin(base, token, 'DELETE', `/admin/drain/${name}`).catch((err: Error) => notes.push(`undrain ${name}: ${err.message}`));
        }
        for (let waited = 0; running && waited < 5_000; waited += 250) await sleep(250);
      }
    })();

    // Faults arrive at up to ~12 a second, each on a random upstream, where it applies to the
    // next request that upstream receives. An upstream gets a new fault only once it has used
    // its last one: faults piling up while a route is skipped (busy, unhealthy, stopped) would
    // otherwise all land at once when it comes back and keep it out for the rest of the run.
    const faulter = (async () => {
      while (running && !CALM) {
        const name = pick(Object.keys(sims));
        const sim = sims[name]!;
        if (!faultPending[name] || sim.received.length > faultMark[name]!) {
          sim.pushFault(randomFault());
          faultPending[name] = true;
          faultMark[name] = sim.received.length;
          faultsPushed++;
        }
        await sleep(between(40, 120));
      }
    })();

    let progressAt = Date.now();
    const worker = async (): Promise<void> => {
      while (sent < TOTAL && Date.now() < stopAt && !router.exited()) {
        sent++;
        const p = planRequest();
        if (p.stream) streamsSent++;
        if (p.abort !== 'none') abortsPlanned++;
        const outcome = await sendOne(base, p);
        counts[outcome]++;
        // A client told to retry later backs off a little, as the OpenAI SDKs do; without it
        // the instant 503s of a full route make up most of the run.
        if (outcome === 'unavailable_503') await sleep(between(100, 400));
        if (Date.now() - progressAt > 10_000) {
          progressAt = Date.now();
          const done = Object.values(counts).reduce((a, b) => a + b, 0);
          console.log(`  ${Math.round((Date.now() - started) / 1000)} s: ${done} done, lost ${counts.lost}, router RSS ${mb(memLast.rss)} MB, heap ${mb(memLast.heapUsed)} MB`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    durationMs = Date.now() - started;
    running = false;
    await Promise.all([sampler, stopper, drainer, faulter]);
    foldSimPeaks();

    if (router.exited()) {
      failures.push(`the router exited during the run (code ${router.child.exitCode}, signal ${router.child.signalCode})`);
    } else {
      // Faults left queued would only meet probes (which they do not touch); every sim is up again.
      for (const sim of Object.values(sims)) await sim.restart();
      let rows: UpstreamRow[] = [];
      for (let waited = 0; waited <= SETTLE_MS; waited += 100) {
        rows = await upstreams(base, token);
        if (rows.every((r) => r.in_flight === 0 && r.queued === 0)) break;
        await sleep(100);
      }
      leaked = rows.filter((r) => r.in_flight !== 0 || r.queued !== 0);
      for (let waited = 0; waited <= 5_000 && Object.values(sims).some((s) => s.inFlight() > 0); waited += 100) await sleep(100);
      orphans = Object.fromEntries(Object.entries(sims).map(([n, s]) => [n, s.inFlight()]));
      sockets = Object.fromEntries(Object.entries(sims).map(([n, s]) => [n, s.openSockets()]));
      memAfter = await memory(base);
      rssPeak = Math.max(rssPeak, memAfter.rss);
    }
  } finally {
    await agent.close().catch(() => undefined);
    await adminAgent.close().catch(() => undefined);
  }

  const exitCode = await router.stop();
  const out = router.stdout();
  await Promise.all(Object.values(sims).map((s) => s.close()));
  const routerErrors = out.split('\n').filter((l) => /"level":(50|60)/.test(l));

  // Verdicts.
  const answered = Object.values(counts).reduce((a, b) => a + b, 0);
  if (answered !== sent) failures.push(`${sent - answered} request(s) never settled on the client`);
  if (counts.lost > 0) failures.push(`${counts.lost} request(s) lost`);
  const leakedSlots = leaked.reduce((n, r) => n + r.in_flight + r.queued, 0);
  if (leakedSlots > 0) failures.push(`slots leaked: ${leaked.map((r) => `${r.route} in_flight=${r.in_flight} queued=${r.queued}`).join(', ')}`);
  for (const [name, n] of Object.entries(simPeak)) {
    if (n <= slots[name]!) continue;
    // Which router requests (x-request-id, also in the router's logs kept below) overlapped, and in what state.
    const seen = sims[name]!.overLimit().map((o) => `\n  - ${o}`).join('');
    failures.push(`${name} ran ${n} generations at once, above its ${slots[name]} slots${seen}`);
  }
  for (const [name, p] of Object.entries(routerPeak)) {
    const q = (doc.routes[name] as { queue: number }).queue;
    if (p.inFlight > slots[name]! || p.queued > q) failures.push(`${name}: the router reported in_flight ${p.inFlight} / queued ${p.queued} against ${slots[name]} slots / ${q} queue`);
  }
  for (const [name, n] of Object.entries(orphans)) if (n > 0) failures.push(`${name}: ${n} generation(s) still running upstream after the router settled`);
  if (routerErrors.length > 0) failures.push(`the router logged ${routerErrors.length} error(s), e.g. ${routerErrors[0]!.slice(0, 300)}`);
  if (noRetryAfter > 0) failures.push(`${noRetryAfter} 503 answer(s) without Retry-After`);
  if (exitCode !== 0 && !failures.some((f) => f.includes('exited during'))) failures.push(`the router exited with ${exitCode} on SIGTERM`);

  const row = (k: string, v: string | number): string => `| ${k} | ${v} |`;
  const lines = [
    `# Soak run`,
    ``,
    `${new Date().toISOString()} · node ${process.version} · ${cpus().length} CPU(s) · seed ${SEED}`,
    `Command: \`npm run soak -- --requests ${TOTAL} --seconds ${SECONDS} --concurrency ${CONCURRENCY} --seed ${SEED}${CALM ? ' --calm' : ''}\``,
    ``,
    `| Figure | Value |`,
    `|---|---|`,
    row('requests sent', `${sent} (${streamsSent} streamed, ${sent - streamsSent} not)`),
    row('duration', `${(durationMs / 1000).toFixed(1)} s (${Math.round(sent / Math.max(1, durationMs / 1000))} req/s)`),
    row('2xx, complete', counts.ok_2xx),
    row('  of which fail-closed synthetic answers', synthetic.n),
    row('4xx (bad input, all expected)', counts.client_4xx),
    row('503 (saturated or unavailable, with Retry-After)', counts.unavailable_503),
    row('5xx other', counts.other_5xx),
    row('error responses by code', [...errorCodes].sort().map(([c, n]) => `${c}: ${n}`).join(', ') || 'none'),
    row('streams ended with `event: error`', counts.stream_error_event),
    row('client-aborted (planned)', `${counts.client_aborted}: ${abortedAt.before_headers} before the headers, ${abortedAt.mid_body} mid-body (${abortsPlanned} planned; the rest were answered first)`),
    row('**lost**', `**${counts.lost}**${lostWhy.size ? ` (${[...lostWhy].map(([w, n]) => `${w}: ${n}`).join('; ')})` : ''}`),
    row('faults pushed / upstream stops / drains', `${faultsPushed} / ${chaosStops} / ${chaosDrains}`),
    row('complete 2xx served by', [...servedBy].sort().map(([r, n]) => `${r} ${n}`).join(', ')),
    ``,
    `| Upstream | slots | peak generations (sim) | peak in_flight / queued (router) | queue | after settling: in_flight+queued | still generating | open sockets (pool + probe) |`,
    `|---|---|---|---|---|---|---|---|`,
    ...Object.keys(sims).map((n) => {
      const l = leaked.find((r) => r.route === n);
      return `| ${n} | ${slots[n]} | ${simPeak[n] ?? 0} | ${routerPeak[n]?.inFlight ?? 0} / ${routerPeak[n]?.queued ?? 0} | ${(doc.routes[n] as { queue: number }).queue} | ${l ? l.in_flight + l.queued : 0} | ${orphans[n] ?? '?'} | ${sockets[n] ?? '?'} |`;
    }),
    ``,
    `| Router process | Value |`,
    `|---|---|`,
    row('slots leaked (sum of in_flight+queued after settling)', `**${leakedSlots}**`),
    row('RSS before / peak / after (MB)', `${mb(memBefore.rss)} / ${mb(rssPeak)} / ${mb(memAfter.rss)}`),
    row('V8 heap used before / after (MB)', `${mb(memBefore.heapUsed)} / ${mb(memAfter.heapUsed)}`),
    row('errors logged by the router', routerErrors.length),
    row('exit on SIGTERM', exitCode === null ? 'killed' : exitCode),
    ``,
    failures.length === 0 ? `**PASS**` : `**FAIL**\n\n${failures.map((f) => `- ${f}`).join('\n')}`,
  ];
  if (lostSamples.length > 0) lines.push('', 'Lost samples:', '', ...lostSamples.map((s) => `- ${s}`));
  if (notes.length > 0) lines.push('', 'Notes:', '', ...[...new Set(notes)].slice(0, 10).map((s) => `- ${s}`));
  const summary = lines.join('\n') + '\n';
  console.log('\n' + summary);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, summary);
  console.log(`written to ${relative(process.cwd(), OUT) || OUT}`);
  if (failures.length === 0) rmSync(work, { recursive: true, force: true });
  else console.log(`router logs kept in ${join(work, 'logs')}`);
  return failures.length === 0 ? 0 : 1;
}

(REPLICAS > 1 ? import('./soak-cluster.ts').then((m) => m.soakCluster({ replicas: REPLICAS, requests: TOTAL, seconds: SECONDS, concurrency: CONCURRENCY, seed: SEED, out: OUT })) : main()).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
