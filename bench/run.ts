// `npm run bench`: what homelab-router adds in front of an upstream, on this machine.
//
// The targets, each its own process on 127.0.0.1, all in front of one fake upstream
// (bench/fake-upstream.ts, answers from prebuilt buffers):
//   direct       the upstream itself
//   passthrough  a minimal undici proxy that pipes the body both ways unread
//                (bench/passthrough.ts): the budget's denominator
//   buffered     the same proxy reading each body whole and sending it with its length
//                (bench/passthrough.ts --buffered): what a proxy that must see the body pays
//   classify     the buffered proxy that also parses each body and classifies it with the
//                shipped policy (bench/passthrough.ts --classify): the least a proxy that
//                routes on the prompt pays, before deciding, admitting, logging or counting
//   tcp          a Node process copying each connection's bytes to the upstream and back, no
//                HTTP (bench/passthrough.ts --tcp): what the extra hops through Node cost
//   nginx        nginx as a reverse proxy (installed with apt-get when missing and run as root;
//                --no-nginx leaves it out): what the extra loopback hops alone cost here
//   router       `homelab-router serve` with the shipped policy's buckets and every route
//                pointed at the fake upstream: parse, validate, classify, decide, admit,
//                forward, log the decision line and the metrics, for every request
// (--express adds `express`: a minimal Express app that parses the JSON and forwards it with
// undici, bench/express-proxy.ts — the reference for the README's Express numbers.)
//
// Loads are interleaved (round 1: A B C, round 2: C B A, ...) so machine drift cancels, and
// each figure is the median over rounds. After each load the bench waits until every process is
// idle again (at most 30 s), so work put off until after a load (a request log catching up) is
// not counted against the next target; that time and the CPU until then are reported for c=32.
// Every load is bounded in time (wrk -d, stream deadlines) and in count (streams per run); the
// whole run takes about 6 minutes.
//   non-stream  wrk, POST of a 1 KB chat body, c=32 (RPS, p50, p99) and c=1 (p50, p99)
//   stream      a raw-socket client: 64-chunk SSE streams, time to first byte and total, c=1, c=16
//   CPU         each proxy's CPU time (/proc/PID/stat) per request and per streamed chunk
//   RSS         the router idle, after the loads, and with 256 streams open at once
//   hops        one loopback round trip between two processes, busy and after idle
//   classifier  bench/classifier.ts (in its own process): 2 KB, 50 KB and 500 KB prompts
// Results: bench/results/<date>.json (everything, per round) and bench/results/latest.md.
//
// Flags: --rounds N (3)  --seconds S (wrk seconds per c=32 run, 5)  --express  --no-nginx
//        --profile (router under --cpu-prof; the top functions are printed, the profile kept)
//        --compare DIR (adds `compare`: the router of another checkout, e.g. the last commit,
//          interleaved with the rest — a before/after on the same machine in the same minutes)
//        --router DIR (bench the router of another checkout instead of this one)
//        --quick (1 round, short loads: a smoke run of the bench itself)
//        --request-log (adds `nolog`: this router with request_log.enabled: false, so the request
//          log's cost is the router column against it, in the same rounds; and, after the
//          rounds, the same cost measured inside one router as --request-log-toggle does, with
//          --pairs N pairs (12))
//        --request-log-only (the router and `nolog` alone, c=32 and c=1 loads only: the request
//          log's cost in a minute or two; CPU split into the router's main thread and the rest
//          of its threads; written to bench/results/request-log-overhead-<date>.md; with
//          --profile both routers run under --cpu-prof, into profiles/router and profiles/nolog)
//        --request-log-toggle (the request log's cost inside one router: under one continuous
//          c=32 load, request_log.enabled is switched by a policy reload between short windows,
//          on/off and off/on in turn, --pairs N pairs (12); each pair's ratio is taken, so the
//          VM's drift and any difference between two processes' heaps cancel; written to
//          bench/results/request-log-toggle-<date>.md)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { Pool } from 'undici';
import { formatUs, type ClassifierResult } from './classifier.ts';
import { STREAM_CHUNKS } from './fake-upstream.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const RESULTS = join(REPO, 'bench/results');

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    express: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    compare: { type: 'string' },
    router: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-nginx': { type: 'boolean', default: false },
    'request-log': { type: 'boolean', default: false },
    'request-log-only': { type: 'boolean', default: false },
    'request-log-toggle': { type: 'boolean', default: false },
    pairs: { type: 'string', default: '12' },
  },
});
const ROUNDS = flags.quick ? 1 : Math.max(1, Math.min(10, Number(flags.rounds) || 3));
const C32_S = flags.quick ? 2 : Math.max(1, Math.min(30, Number(flags.seconds) || 5));
const C1_S = flags.quick ? 1 : 3;
const STREAMS_C1 = flags.quick ? 6 : 16;
const STREAMS_C16 = flags.quick ? 48 : 96;
const OPEN_STREAMS = 256;
// 64 chunks 5 ms apart (200 tokens/s, a fast model's pace): ~320 ms per stream.
const STREAM_INTERVAL_MS = 5;
const STREAM_DEADLINE_MS = 30_000;

const t0 = Date.now();
function progress(msg: string): void {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}`);
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/** A realistic ~1 KB chat request (system prompt plus a user question the classifier scores). */
function chatBody(extra: Record<string, unknown> = {}, model = 'homelab/auto'): string {
  const user =
    'I am writing a small Python service that reads sensor readings from an MQTT broker and stores ' +
    'them in Postgres. Every few hours the consumer stops receiving messages without any error, and ' +
    'restarting the container fixes it. The client library reconnects on its own, according to the ' +
    'docs. What should I log to find out whether the broker drops the session or my callback hangs, ' +
    'and how would you structure the reconnect logic so it survives a broker restart?';
  const body = { model, ...extra, messages: [{ role: 'system', content: 'You are a concise assistant for a homelab. Answer with concrete steps; say when you are unsure.' }, { role: 'user', content: user }] };
  let json = JSON.stringify(body);
  // Pad the user message to exactly 1 KiB of JSON, so every target gets the same bytes.
  if (json.length < 1024) {
    body.messages[1]!.content += ' ' + 'Thanks.'.repeat(Math.ceil((1024 - json.length) / 7)).slice(0, 1023 - json.length);
    json = JSON.stringify(body);
  }
  return json;
}

const NON_STREAM_BODY = chatBody();
const STREAM_BODY = chatBody({ stream: true, stream_options: { include_usage: true }, bench_interval_ms: STREAM_INTERVAL_MS });

// ---------------------------------------------------------------------------------------------
// Processes

interface Target {
  name: string;
  port: number;
  proc: ChildProcess;
}

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.pid) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

/** Starts a node process and resolves with the port it reports (a JSON line on stdout). */
function startProcess(name: string, args: string[], env: NodeJS.ProcessEnv, portOf: (line: string) => number | undefined): Promise<Target> {
  const proc = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s\n${stderr}`)), 30_000);
    const onData = (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const port = portOf(line);
        if (port !== undefined) {
          clearTimeout(timer);
          // Keep draining stdout so a chatty child never blocks on a full pipe.
          proc.stdout!.off('data', onData);
          proc.stdout!.resume();
          resolve({ name, port, proc });
          return;
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready\n${stderr}`));
    });
  });
}

const readyPort = (line: string) => {
  try {
    const v = JSON.parse(line) as { ready?: boolean; port?: number };
    return v.ready ? v.port : undefined;
  } catch {
    return undefined;
  }
};

const routerPort = (line: string) => {
  const m = /"listen":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(line);
  return m ? Number(m[1]) : undefined;
};

/** A checkout's shipped policy (buckets and routes), every route pointed at the fake upstream. */
function benchPolicy(root: string, upstreamPort: number, requestLog = true): string {
  const doc = loadYaml(readFileSync(join(root, 'routing_policy.yaml'), 'utf8')) as Record<string, any>;
  if (!requestLog) doc.request_log = { ...doc.request_log, enabled: false };
  doc.server = { ...doc.server, listen: '127.0.0.1:0' };
  for (const route of Object.values(doc.routes as Record<string, any>)) {
    route.url = `http://127.0.0.1:${upstreamPort}/v1`;
    // Enough slots that admission never limits c=32, and 4 routes x 64 = the 256 open streams.
    route.slots = 64;
    route.queue = 64;
    route.queue_timeout_ms = 5_000;
    route.timeout_ms = 30_000;
    // No recovery: the bench must never reach for SSH or a real host.
    route.recovery = { managed: false };
  }
  doc.hosts = {};
  return dumpYaml(doc, { lineWidth: 200 });
}

async function stopProcess(t: Target): Promise<void> {
  if (t.proc.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => t.proc.once('exit', () => resolve()));
  t.proc.kill('SIGTERM');
  const timer = setTimeout(() => t.proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The router's event-loop delay p99 (ms) since the last call: prom-client resets its
 * histogram at each scrape, so a scrape before a load and one after bracket the load.
 */
async function eventLoopP99Ms(t: Target): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.port}/metrics`)).text();
  const m = /^homelab_router_nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text);
  return m ? Number(m[1]) * 1000 : NaN;
}

/**
 * --request-log: the router (request log on) against `nolog` (off) at c=32, judged on the
 * median of each round's ratio: the two run back to back in every round, so a round in which
 * this VM slowed down counts as one ratio, not as one slow median on one side only.
 */
function requestLogBudget(c32: Record<string, WrkResult[]>, loopP99: Record<string, number[]>): Budget {
  const ratio = median(c32.router!.map((r, i) => r.rps / c32.nolog![i]!.rps));
  return {
    item: 'request log on vs off: RPS at c=32',
    value: fmt.ratio(ratio),
    limit: '≥ 0.95×',
    ok: ratio >= 0.95,
    vsPassthrough: `p99 latency ${fmt.us(median(c32.router!.map((r) => r.p99Us)))} on, ${fmt.us(median(c32.nolog!.map((r) => r.p99Us)))} off; event-loop delay p99 ${median(loopP99.router ?? [NaN]).toFixed(1)} ms on, ${median(loopP99.nolog ?? [NaN]).toFixed(1)} ms off`,
    byRound: c32.router!.map((r, i) => fmt.ratio(r.rps / c32.nolog![i]!.rps)).join(', '),
  };
}

/** --request-log: the request log's cost inside one router (measureToggle), the steadier figure. */
function toggleBudget(t: ToggleResult): Budget {
  return {
    item: 'request log on vs off: RPS at c=32, one router, paired windows',
    value: fmt.ratio(t.ratio),
    limit: '≥ 0.95×',
    ok: t.ratio >= 0.95,
    vsPassthrough: `${t.pairs.length} pairs; CPU added ${fmt.signedUs(t.cpuAddedUs)} a request, main thread ${fmt.signedUs(t.mainAddedUs)}`,
    byRound: t.pairs.map((p) => fmt.ratio(p.on.rps / p.off.rps)).join(', '),
  };
}

/**
 * --request-log: the router's own hot path (`nolog`: no request log) against the buffered
 * pass-through, the proxy that also reads every body whole, on the median of each round's ratio.
 */
function hotPathBudgets(c32: Record<string, WrkResult[]>): Budget[] {
  const rounds = (pick: (x: WrkResult) => number) => c32.nolog!.map((r, i) => pick(r) / pick(c32.buffered![i]!));
  const cpu = rounds((x) => x.cpuUsPerReq);
  const rps = rounds((x) => x.rps);
  // The classifying proxy against the same denominator: the floor for anything that routes on the prompt.
  const floor = (pick: (x: WrkResult) => number) => (c32.classify ? `the classifying proxy ${fmt.ratio(median(c32.classify.map((r, i) => pick(r) / pick(c32.buffered![i]!))))}` : undefined);
  return [
    { item: 'CPU per request at c=32, nolog ÷ buffered pass-through', value: fmt.ratio(median(cpu)), limit: '≤ 1.5×', ok: median(cpu) <= 1.5, byRound: cpu.map(fmt.ratio).join(', '), vsPassthrough: floor((x) => x.cpuUsPerReq) },
    { item: 'RPS at c=32, nolog ÷ buffered pass-through', value: fmt.ratio(median(rps)), limit: '≥ 0.8×', ok: median(rps) >= 0.8, byRound: rps.map(fmt.ratio).join(', '), vsPassthrough: floor((x) => x.rps) },
  ];
}

// ---------------------------------------------------------------------------------------------
// /proc readings

const SETTLE_WINDOW_MS = 250;
/** Idle: all processes together used under 2% of a core over the window. */
const SETTLE_CPU_S = 0.02 * (SETTLE_WINDOW_MS / 1000);
const SETTLE_MAX_MS = 30_000;

/**
 * Waits until the processes together use under 2% of a core over a 250 ms window (at most
 * 30 s), so work one target put off until after its load (a request log catching up, a GC)
 * is not counted against the next target's load. Returns the milliseconds it waited.
 */
async function settle(pids: number[]): Promise<number> {
  const started = Date.now();
  const total = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  let before = total();
  while (Date.now() - started < SETTLE_MAX_MS) {
    await new Promise((r) => setTimeout(r, SETTLE_WINDOW_MS));
    const now = total();
    if (now - before < SETTLE_CPU_S) return Math.max(0, Date.now() - started - SETTLE_WINDOW_MS);
    before = now;
  }
  return SETTLE_MAX_MS;
}

/** The router's request-log rows waiting to be written, from its /metrics. */
async function requestLogQueued(t: Target): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.port}/metrics`)).text();
  const m = /^homelab_router_request_log_queue_rows (\S+)$/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU seconds the process (or one of its threads) has used. */
function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------------------------------------------------------------------------------------------
// wrk

/**
 * The path of `command`, installing Debian `pkg` with apt-get when it is missing and this runs
 * as root; otherwise null, after saying how to install it.
 */
function ensureCommand(command: string, pkg: string, why: string): string | null {
  const lookup = () => spawnSync('sh', ['-c', `command -v ${command} || { test -x /usr/sbin/${command} && echo /usr/sbin/${command}; }`], { encoding: 'utf8' }).stdout.trim();
  const found = lookup();
  if (found) return found;
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).stdout.trim() !== '';
  if (!isRoot || !hasApt) {
    console.error(`${command} is not installed. ${why}`);
    console.error(isRoot ? `Install it with your package manager (Debian/Ubuntu: apt-get install ${pkg}).` : `Install it as root: sudo apt-get install -y ${pkg}, then rerun.`);
    return null;
  }
  progress(`${command} is missing: installing ${pkg} with apt-get (running as root)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`apt-get install ${pkg} failed.`);
    return null;
  }
  return lookup() || null;
}

function ensureWrk(): string {
  const wrk = ensureCommand('wrk', 'wrk', 'The non-stream loads need it (a C load generator, so the client is not the bottleneck).');
  if (!wrk) process.exit(2);
  return wrk;
}

/** A port nothing listens on right now (the OS picks it; the race with another process is moot on a bench box). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * nginx as a reverse proxy in front of the upstream: one process (master_process off), upstream
 * keep-alive, no response buffering (SSE passes through as it arrives). The reference for what
 * a proxy can cost on this machine, against which the Node proxies' latency is read.
 */
async function startNginx(nginx: string, work: string, upstreamPort: number): Promise<Target> {
  const port = await freePort();
  const dir = join(work, 'nginx');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`,
  );
  const proc = spawn(nginx, ['-p', `${dir}/`, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  // Ready when it accepts a connection: at most 50 tries, 100 ms apart.
  for (let i = 0; i < 50; i++) {
    if (proc.exitCode !== null) break;
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return { name: 'nginx', port, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nginx did not start on :${port}\n${stderr}`);
}

function wrkScript(dir: string, body: string): string {
  const path = join(dir, 'post.lua');
  // wrk's `done` hook prints the latency distribution (µs) as one JSON line.
  writeFileSync(
    path,
    `wrk.method = "POST"
wrk.body = ${JSON.stringify(body)}
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
`,
  );
  return path;
}

interface WrkResult {
  rps: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  requests: number;
  errors: number;
  /** CPU µs the target process spent per request. */
  cpuUsPerReq: number;
  /** Of which on its main thread (the rest: worker threads, GC helpers, the libuv pool). */
  mainCpuUsPerReq: number;
  /**
   * c=32 loads: CPU µs per request from the load's start until every process was idle again,
   * so work a process put off until after the load (the request log's writes) is counted too.
   */
  settledCpuUsPerReq?: number;
  /** c=32 loads: how long after the load ended every process was idle again (ms). */
  settleMs?: number;
  /** c=32 loads of a router: request-log rows still waiting when the load ended. */
  queuedAtEnd?: number;
}

function runWrk(wrk: string, script: string, target: Target, connections: number, seconds: number): Promise<WrkResult> {
  const cpu0 = cpuSeconds(target.proc.pid!);
  const main0 = cpuSeconds(target.proc.pid!, target.proc.pid!);
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', script, `http://127.0.0.1:${target.port}/v1/chat/completions`];
    const p = spawn(wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const kill = setTimeout(() => p.kill('SIGKILL'), (seconds + 15) * 1000);
    p.once('exit', () => {
      clearTimeout(kill);
      const line = out.split('\n').find((l) => l.startsWith('BENCH '));
      if (!line) return reject(new Error(`wrk against ${target.name} printed no result:\n${out}`));
      const r = JSON.parse(line.slice(6)) as Record<string, number>;
      const requests = r.requests!;
      const cpu = cpuSeconds(target.proc.pid!) - cpu0;
      const mainCpu = cpuSeconds(target.proc.pid!, target.proc.pid!) - main0;
      resolve({
        rps: requests / (r.duration_us! / 1e6),
        p50Us: r.p50!,
        p90Us: r.p90!,
        p99Us: r.p99!,
        requests,
        errors: r.connect! + r.read! + r.write! + r.status! + r.timeout!,
        cpuUsPerReq: requests > 0 ? (cpu * 1e6) / requests : NaN,
        mainCpuUsPerReq: requests > 0 ? (mainCpu * 1e6) / requests : NaN,
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Streams

interface StreamRun {
  ttfbP50Ms: number;
  ttfbP99Ms: number;
  totalP50Ms: number;
  totalP99Ms: number;
  failed: number;
  /** CPU µs the target process spent per relayed chunk (the whole stream's work / chunks). */
  cpuUsPerChunk: number;
}

interface OneStream {
  ok: boolean;
  ttfbMs: number;
  totalMs: number;
}

/**
 * One keep-alive HTTP/1.1 connection that sends a prebuilt POST and times the answer: the
 * first body byte (the first SSE event; headers flushed ahead of it do not count) and the
 * end of the chunked body. A raw socket rather than an HTTP client library, so that like wrk
 * the client adds almost nothing to what it measures.
 */
class RawConnection {
  readonly #port: number;
  #socket: Socket | null = null;

  constructor(port: number) {
    this.#port = port;
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  request(body: string, onFirstByte?: () => void): Promise<OneStream> {
    const socket = (this.#socket ??= connect({ host: '127.0.0.1', port: this.#port, noDelay: true }));
    const payload = Buffer.from(body);
    // Head and body in one write, as wrk and HTTP client libraries send a small request.
    const request = Buffer.concat([Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${this.#port}\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`), payload]);
    const start = performance.now();
    return new Promise((resolve) => {
      let text = '';
      let bodyAt = -1;
      let ttfb = NaN;
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onClose);
        if (!ok) this.close();
        resolve({ ok, ttfbMs: ttfb, totalMs: performance.now() - start });
      };
      const onData = (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (bodyAt === -1) {
          const end = text.indexOf('\r\n\r\n');
          if (end === -1) return;
          bodyAt = end + 4;
          if (!text.startsWith('HTTP/1.1 200')) return finish(false);
        }
        if (Number.isNaN(ttfb) && text.length > bodyAt) {
          ttfb = performance.now() - start;
          onFirstByte?.();
        }
        // The terminal chunk of a chunked body (every target streams SSE chunked).
        if (text.endsWith('0\r\n\r\n') && (text.endsWith('\r\n0\r\n\r\n') || text.length - bodyAt === 5)) finish(text.includes('data: [DONE]', bodyAt));
      };
      const onClose = () => finish(false);
      const timer = setTimeout(() => finish(false), STREAM_DEADLINE_MS);
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onClose);
      socket.write(request);
    });
  }
}

async function runStreams(target: Target, concurrency: number, count: number): Promise<StreamRun> {
  const conns = Array.from({ length: concurrency }, () => new RawConnection(target.port));
  const cpu0 = cpuSeconds(target.proc.pid!);
  const results: OneStream[] = [];
  let started = 0;
  // Workers start staggered over one stream's length, so streams begin one by one as real
  // traffic does, not in synchronized bursts of `concurrency` (which would measure how long
  // the burst takes to get through, not what one request waits for).
  const streamMs = STREAM_CHUNKS * STREAM_INTERVAL_MS;
  const worker = async (conn: RawConnection, k: number) => {
    await new Promise((r) => setTimeout(r, (k * streamMs) / concurrency));
    while (started < count) {
      started++;
      results.push(await conn.request(STREAM_BODY));
    }
  };
  await Promise.all(conns.map(worker));
  const cpu = cpuSeconds(target.proc.pid!) - cpu0;
  for (const c of conns) c.close();
  const ok = results.filter((r) => r.ok);
  return {
    ttfbP50Ms: percentile(ok.map((r) => r.ttfbMs), 50),
    ttfbP99Ms: percentile(ok.map((r) => r.ttfbMs), 99),
    totalP50Ms: percentile(ok.map((r) => r.totalMs), 50),
    totalP99Ms: percentile(ok.map((r) => r.totalMs), 99),
    failed: results.length - ok.length,
    cpuUsPerChunk: (cpu * 1e6) / (ok.length * STREAM_CHUNKS),
  };
}

/** Opens `count` slow streams at once through the router, reads RSS while all are open. */
async function rssWithOpenStreams(target: Target, count: number): Promise<{ rssMb: number; ok: number; openAtSample: number }> {
  // One pinned alias per route, so the 256 streams spread over the 4 routes' 64 slots each.
  const aliases = ['homelab/vision', 'homelab/code', 'homelab/reasoning', 'homelab/chat'];
  // 64 chunks every 60 ms: each stream stays open ~3.8 s, long enough to open all of them.
  const bodies = aliases.map((a) => chatBody({ stream: true, bench_interval_ms: 60 }, a));
  const conns = Array.from({ length: count }, () => new RawConnection(target.port));
  let open = 0;
  let allOpen: () => void = () => {};
  const opened = new Promise<void>((resolve) => (allOpen = resolve));
  const streams = conns.map((conn, i) =>
    conn.request(bodies[i % bodies.length]!, () => {
      if (++open === count) allOpen();
    }),
  );
  await Promise.race([opened, new Promise((r) => setTimeout(r, 10_000))]);
  const openAtSample = open;
  const rss = rssMb(target.proc.pid!);
  const done = await Promise.all(streams);
  for (const c of conns) c.close();
  return { rssMb: rss, ok: done.filter((r) => r.ok).length, openAtSample };
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** Figures as the tables show them; a target that did not run a load shows '–'. */
const shown = (write: (v: number) => string) => (v: number) => (Number.isFinite(v) ? write(v) : '–');
const fmt = {
  rps: shown((v) => v.toFixed(0)),
  us: shown((v) => `${v.toFixed(0)} µs`),
  ms: shown((v) => `${v.toFixed(2)} ms`),
  mb: shown((v) => `${v.toFixed(1)} MB`),
  ratio: shown((v) => `${v.toFixed(2)}×`),
  signedUs: shown((v) => `${v >= 0 ? '+' : ''}${v.toFixed(0)} µs`),
};

function gitInfo(root = REPO): string {
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'router'], { cwd: root, encoding: 'utf8' }).stdout.trim() !== '';
  return rev ? `${rev}${dirty ? ' + uncommitted router changes' : ''}` : 'unknown';
}

function topOfProfile(dir: string, n: number): string[] {
  // tsx's module loader runs on a worker thread with its own profile; the main thread's is the
  // one with by far the most samples.
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f, size: statSync(join(dir, f)).size }))
    .sort((a, b) => b.size - a.size);
  if (files.length === 0) return ['(no profile written)'];
  const profile = JSON.parse(readFileSync(join(dir, files[0]!.f), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') return; // shares of busy time
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(node_modules|router)\//, '$1/')}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + profile.timeDeltas[i]!);
    total += profile.timeDeltas[i]!;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
}

// ---------------------------------------------------------------------------------------------
// The run

interface Budget {
  item: string;
  value: string;
  limit: string;
  ok: boolean;
  /** The same figure against the pass-through proxy instead of the upstream, where it applies. */
  vsPassthrough?: string;
  /** The figure in each round (router minus direct, same round), where it is a latency. */
  byRound?: string;
}

/**
 * Loopback round trip between two processes, back to back and after 5 ms idle: what one hop
 * costs on this machine when the receiver is busy and when it has gone idle. On a VM the idle
 * case pays for waking a halted vCPU, and a proxied stream's first byte crosses several such
 * hops; this is the floor under every latency figure above.
 */
async function hopLatency(): Promise<{ busyUs: number; idleUs: number }> {
  const echo = spawn(process.execPath, ['-e', "const s=require('net').createServer({noDelay:true},(c)=>c.on('data',(d)=>c.write(d)));s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(echo);
  const port = await new Promise<number>((resolve) => echo.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  const sock = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((r) => sock.once('connect', r));
  const rtt = () =>
    new Promise<number>((resolve) => {
      const t = performance.now();
      sock.once('data', () => resolve((performance.now() - t) * 1000));
      sock.write('x');
    });
  const sample = async (gapMs: number) => {
    const xs: number[] = [];
    for (let i = 0; i < 100; i++) {
      if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      xs.push(await rtt());
    }
    return median(xs);
  };
  const busyUs = await sample(0);
  const idleUs = await sample(5);
  sock.destroy();
  echo.kill();
  return { busyUs, idleUs };
}

/**
 * One POST to the upstream and its whole answer, from this process: the same bytes over a raw
 * socket and through an undici Pool (what every Node proxy uses to call its upstream), after
 * 5 ms idle and back to back. The gap is what Node's HTTP client machinery costs per request
 * on this machine, before any proxy logic; it grows when the process has gone idle (its code
 * and data are no longer in cache), which is the state a stream's first request meets.
 */
async function clientLeg(upstreamPort: number): Promise<{ rawIdleUs: number; undiciIdleUs: number; rawBusyUs: number; undiciBusyUs: number }> {
  const body = NON_STREAM_BODY;
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 1, pipelining: 1 });
  const sock = connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
  await new Promise((r) => sock.once('connect', r));
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  const raw = () =>
    new Promise<number>((resolve) => {
      const t = performance.now();
      let text = '';
      const onData = (c: Buffer) => {
        text += c.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const len = /content-length: (\d+)/i.exec(text);
        if (end !== -1 && len && text.length >= end + 4 + Number(len[1])) {
          sock.off('data', onData);
          resolve((performance.now() - t) * 1000);
        }
      };
      sock.on('data', onData);
      sock.write(head + body);
    });
  const viaUndici = async () => {
    const t = performance.now();
    const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.body.arrayBuffer();
    return (performance.now() - t) * 1000;
  };
  const sample = async (gapMs: number) => {
    const r: number[] = [];
    const u: number[] = [];
    for (let i = 0; i < 100; i++) {
      if (gapMs) await new Promise((ok) => setTimeout(ok, gapMs));
      r.push(await raw());
      if (gapMs) await new Promise((ok) => setTimeout(ok, gapMs));
      u.push(await viaUndici());
    }
    return [median(r), median(u)] as const;
  };
  const [rawIdleUs, undiciIdleUs] = await sample(5);
  const [rawBusyUs, undiciBusyUs] = await sample(0);
  sock.destroy();
  await pool.close();
  return { rawIdleUs, undiciIdleUs, rawBusyUs, undiciBusyUs };
}

/**
 * --request-log-only: the request log's cost, from the router (log on) and nolog (off) loaded in
 * the same interleaved rounds. CPU per request is the robust figure on a shared machine (other
 * processes slow both alike but do not add to their CPU time); it is split into the router's
 * main thread, which serves requests, and its other threads (the log's worker among them).
 */
function writeRequestLogOnly(c32: Record<string, WrkResult[]>, c1: Record<string, WrkResult[]>, loopP99: Record<string, number[]>, load0: number[]): void {
  const names = Object.keys(c32);
  const med = (runs: Record<string, WrkResult[]>, n: string, pick: (x: WrkResult) => number) => median((runs[n] ?? []).map(pick));
  const rows: Array<[string, (n: string) => string]> = [
    ['non-stream RPS, c=32', (n) => fmt.rps(med(c32, n, (x) => x.rps))],
    ['non-stream p50, c=32', (n) => fmt.us(med(c32, n, (x) => x.p50Us))],
    ['non-stream p99, c=32', (n) => fmt.us(med(c32, n, (x) => x.p99Us))],
    ['CPU per request, c=32, whole process', (n) => fmt.us(med(c32, n, (x) => x.cpuUsPerReq))],
    ['… on the main thread', (n) => fmt.us(med(c32, n, (x) => x.mainCpuUsPerReq))],
    ['… on the other threads', (n) => fmt.us(med(c32, n, (x) => x.cpuUsPerReq - x.mainCpuUsPerReq))],
    ['CPU per request until idle after the load', (n) => fmt.us(med(c32, n, (x) => x.settledCpuUsPerReq ?? NaN))],
    ['idle again after the load', (n) => fmt.ms(med(c32, n, (x) => x.settleMs ?? NaN))],
    ['log rows waiting when the load ended', (n) => (n === 'router' ? String(Math.round(med(c32, n, (x) => x.queuedAtEnd ?? NaN))) : '–')],
    ['event-loop delay p99, c=32', (n) => (loopP99[n] ? fmt.ms(median(loopP99[n]!)) : '–')],
    ['non-stream p50, c=1', (n) => fmt.us(med(c1, n, (x) => x.p50Us))],
  ];
  const byRound = (pick: (x: WrkResult) => number, show: (v: number) => string) => c32.router!.map((r, i) => show(pick(r) / pick(c32.nolog![i]!))).join(', ');
  const rpsRatio = med(c32, 'router', (x) => x.rps) / med(c32, 'nolog', (x) => x.rps);
  const cpuAdded = med(c32, 'router', (x) => x.cpuUsPerReq) - med(c32, 'nolog', (x) => x.cpuUsPerReq);
  const date = new Date().toISOString();
  const md = [
    `# Request log on vs off — ${date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`npm run bench -- --request-log-only --rounds ${ROUNDS} --seconds ${C32_S}\`. ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at end. Router at ${gitInfo(flags.router ?? REPO)}${flags.router ? ` (${flags.router})` : ''}. ` +
      `router = request_log on (the shipped policy), nolog = the same router with request_log.enabled: false; wrk -t1, POST of a 1 KB chat body, ${C32_S} s at c=32 and ${C1_S} s at c=1, median of ${ROUNDS} interleaved round(s).`,
    '',
    `| metric | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
    ...rows.map(([title, show]) => `| ${title} | ${names.map(show).join(' | ')} |`),
    '',
    `- RPS at c=32, on ÷ off: **${fmt.ratio(rpsRatio)}** (by round ${byRound((x) => x.rps, fmt.ratio)}; budget ≥ 0.95×)`,
    `- CPU per request added by the log, counted until the router was idle again: **${fmt.signedUs(med(c32, 'router', (x) => x.settledCpuUsPerReq ?? NaN) - med(c32, 'nolog', (x) => x.settledCpuUsPerReq ?? NaN))}**`,
    `- CPU per request added by the log during the load: **${fmt.signedUs(cpuAdded)}** (by round ${c32.router!.map((r, i) => fmt.signedUs(r.cpuUsPerReq - c32.nolog![i]!.cpuUsPerReq)).join(', ')}), of which main thread ${fmt.signedUs(med(c32, 'router', (x) => x.mainCpuUsPerReq) - med(c32, 'nolog', (x) => x.mainCpuUsPerReq))}`,
    '',
  ].join('\n');
  writeReport('request-log-overhead', date, md);
}

/** Writes a report to bench/results/<prefix>-<date>.md and prints it. */
function writeReport(prefix: string, date: string, md: string): void {
  const stamp = date.replace(/[:]/g, '-').replace(/\..*$/, '');
  writeFileSync(join(RESULTS, `${prefix}-${stamp}.md`), md);
  console.log('\n' + md);
  progress(`wrote bench/results/${prefix}-${stamp}.md`);
}

/** The environment a router under test runs with: its own log and data directories, an admin token. */
function routerEnv(work: string, name: string): NodeJS.ProcessEnv {
  return { HOMELAB_ROUTER_LOG_DIR: join(work, `${name}-logs`), HOMELAB_ROUTER_DATA_DIR: join(work, `${name}-data`), HOMELAB_ROUTER_ADMIN_TOKEN: BENCH_ADMIN_TOKEN };
}

const BENCH_ADMIN_TOKEN = 'bench-token';
const TOGGLE_WINDOW_MS = 1_500;
/** After each switch: the reload done, the queue of the last window handed over. */
const TOGGLE_SETTLE_MS = 400;

interface ToggleWindow {
  rps: number;
  mainUs: number;
  allUs: number;
}

/** Requests the router has answered so far, from its /metrics. */
async function routerRequests(t: Target): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.port}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('homelab_router_requests_total{')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

/** One measuring window: RPS and CPU per request (main thread, whole process) while the load runs. */
async function toggleWindow(t: Target): Promise<ToggleWindow> {
  const pid = t.proc.pid!;
  const n0 = await routerRequests(t);
  const main0 = cpuSeconds(pid, pid);
  const all0 = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, TOGGLE_WINDOW_MS));
  const n = (await routerRequests(t)) - n0;
  const ms = performance.now() - t0;
  if (n <= 0) throw new Error('no request was answered in a window: the load ended before the windows did');
  return { rps: (n * 1000) / ms, mainUs: ((cpuSeconds(pid, pid) - main0) * 1e6) / n, allUs: ((cpuSeconds(pid) - all0) * 1e6) / n };
}

/**
 * --request-log-toggle: one router under one continuous c=32 load; between windows its policy
 * is rewritten with request_log.enabled on or off and reloaded (POST /admin/reload-config),
 * pairs alternating on/off and off/on. The request log's cost is each pair's ratio, so what
 * differs between two processes (heap layout, JIT, a core's other tenants) and the VM's drift
 * over minutes both cancel.
 */
interface ToggleResult {
  pairs: Array<{ on: ToggleWindow; off: ToggleWindow }>;
  requests: number;
  /** Median of the pairs' on ÷ off RPS. */
  ratio: number;
  /** Median of the pairs' CPU per request added by the log: the whole process, and the main thread. */
  cpuAddedUs: number;
  mainAddedUs: number;
}

/**
 * The request log's cost inside one router: a fresh router under one continuous c=32 load, its
 * policy rewritten with request_log.enabled on or off and reloaded before each window, pairs in
 * turn on/off and off/on.
 */
async function measureToggle(wrk: string, work: string, upstream: Target, root: string, pairs: number): Promise<ToggleResult> {
  const policyPath = join(work, 'toggle-policy.yaml');
  writeFileSync(policyPath, benchPolicy(root, upstream.port, true));
  const router = await startProcess('toggled', [join(root, 'bin/homelab-router.js'), 'serve', '--policy', policyPath, '--listen', '127.0.0.1:0'], routerEnv(work, 'toggled'), routerPort);
  const setLog = async (on: boolean) => {
    writeFileSync(policyPath, benchPolicy(root, upstream.port, on));
    const r = await fetch(`http://127.0.0.1:${router.port}/admin/reload-config`, { method: 'POST', headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } });
    if (!r.ok) throw new Error(`reload failed: ${r.status} ${await r.text()}`);
  };
  const script = wrkScript(work, NON_STREAM_BODY);
  progress('request log toggled in one router; warm-up: 3 s at c=32');
  await runWrk(wrk, script, router, 32, 3);
  const seconds = Math.ceil((pairs * 2 * (TOGGLE_WINDOW_MS + TOGGLE_SETTLE_MS + 200)) / 1000) + 2;
  progress(`${pairs} pairs of ${TOGGLE_WINDOW_MS} ms windows under one ${seconds} s load at c=32`);
  const load = runWrk(wrk, script, router, 32, seconds);
  await new Promise((r) => setTimeout(r, 500));
  const rows: Array<{ on: ToggleWindow; off: ToggleWindow }> = [];
  for (let i = 0; i < pairs; i++) {
    const pair: Partial<Record<'on' | 'off', ToggleWindow>> = {};
    for (const on of i % 2 === 0 ? [true, false] : [false, true]) {
      await setLog(on);
      await new Promise((r) => setTimeout(r, TOGGLE_SETTLE_MS));
      pair[on ? 'on' : 'off'] = await toggleWindow(router);
    }
    rows.push(pair as { on: ToggleWindow; off: ToggleWindow });
    const { on, off } = rows.at(-1)!;
    progress(`pair ${i + 1}/${pairs}: on ${fmt.rps(on.rps)} rps, main ${on.mainUs.toFixed(0)} µs | off ${fmt.rps(off.rps)} rps, main ${off.mainUs.toFixed(0)} µs | ${fmt.ratio(on.rps / off.rps)}`);
  }
  const loaded = await load;
  await stopProcess(router);
  if (loaded.errors > 0) throw new Error(`${loaded.errors} errors of ${loaded.requests} requests during the toggled load`);
  return {
    pairs: rows,
    requests: loaded.requests,
    ratio: median(rows.map((r) => r.on.rps / r.off.rps)),
    cpuAddedUs: median(rows.map((r) => r.on.allUs - r.off.allUs)),
    mainAddedUs: median(rows.map((r) => r.on.mainUs - r.off.mainUs)),
  };
}

/** --request-log-toggle: measureToggle alone, written to bench/results/request-log-toggle-<date>.md. */
function togglePairs(): number {
  return Math.max(2, Math.min(40, Number(flags.pairs) || 12));
}

async function requestLogToggle(wrk: string, work: string, upstream: Target, load0: number[]): Promise<void> {
  const pairs = togglePairs();
  const toggled = await measureToggle(wrk, work, upstream, flags.router ?? REPO, pairs);
  const { pairs: rows, ratio } = toggled;
  const date = new Date().toISOString();
  const md = [
    `# Request log on vs off in one router — ${date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`npm run bench -- --request-log-toggle --pairs ${pairs}${flags.router ? ` --router ${flags.router}` : ''}\`. ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at end. Router at ${gitInfo(flags.router ?? REPO)}${flags.router ? ` (${flags.router})` : ''}. ` +
      `One router with the shipped policy under one wrk load (-t1, c=32, POST of a 1 KB chat body, ${toggled.requests} requests, no errors); request_log.enabled switched by a policy reload ${TOGGLE_SETTLE_MS} ms before each ${TOGGLE_WINDOW_MS} ms window; pairs in turn on/off and off/on.`,
    '',
    '| pair | on: RPS | on: CPU µs/req (main) | off: RPS | off: CPU µs/req (main) | on ÷ off |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r, i) => `| ${i + 1} | ${fmt.rps(r.on.rps)} | ${r.on.allUs.toFixed(0)} (${r.on.mainUs.toFixed(0)}) | ${fmt.rps(r.off.rps)} | ${r.off.allUs.toFixed(0)} (${r.off.mainUs.toFixed(0)}) | ${fmt.ratio(r.on.rps / r.off.rps)} |`),
    '',
    `- RPS at c=32, on ÷ off, median of the pairs: **${fmt.ratio(ratio)}** (budget ≥ 0.95×: ${ratio >= 0.95 ? 'met' : '**not met**'})`,
    `- CPU per request added by the log, median of the pairs: **${fmt.signedUs(toggled.cpuAddedUs)}**, of which main thread ${fmt.signedUs(toggled.mainAddedUs)}`,
    '',
  ].join('\n');
  writeReport('request-log-toggle', date, md);
}

/**
 * `npm run build` in a checkout whose router is benched. bin/homelab-router.js runs the sources
 * through tsx whenever dist/ is older than any file in router/: a bench run after an edit
 * without a build measured that (a loader thread, the compiler in memory: ~50 MB more RSS
 * idle, two more threads) instead of what an operator runs.
 */
function buildRouter(root: string): void {
  progress(`npm run build in ${root}`);
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed in ${root}:\n${(r.stdout + r.stderr).slice(-4000)}`);
}

async function main(): Promise<void> {
  const wrk = ensureWrk();
  const work = mkdtempSync(join(tmpdir(), 'hr-bench-'));
  process.once('exit', () => rmSync(work, { recursive: true, force: true }));
  const profileDir = join(RESULTS, 'profiles');
  mkdirSync(RESULTS, { recursive: true });
  const load0 = loadavg();
  progress(`bench: ${ROUNDS} round(s), c=32 loads of ${C32_S} s, c=1 loads of ${C1_S} s; scratch dir ${work}`);
  if (load0[0]! > 0.5) progress(`note: load average is ${load0.map((l) => l.toFixed(2)).join(' ')} before the bench; other processes will add noise (ratios are still interleaved)`);

  for (const root of new Set([flags.router ?? REPO, ...(flags.compare ? [flags.compare] : [])])) buildRouter(root);

  const upstream = await startProcess('upstream', ['--import', 'tsx', 'bench/fake-upstream.ts', '--interval-ms', String(STREAM_INTERVAL_MS)], {}, readyPort);
  if (flags['request-log-toggle']) {
    await requestLogToggle(wrk, work, upstream, load0);
    await stopProcess(upstream);
    return;
  }
  // --request-log-only: the router against nolog alone (and direct, for reference).
  const only = flags['request-log-only'];
  const passthrough = only ? undefined : await startProcess('passthrough', ['--import', 'tsx', 'bench/passthrough.ts', '--upstream', `http://127.0.0.1:${upstream.port}`, '--connections', String(OPEN_STREAMS)], {}, readyPort);
  const buffered = only ? undefined : await startProcess('buffered', ['--import', 'tsx', 'bench/passthrough.ts', '--buffered', '--upstream', `http://127.0.0.1:${upstream.port}`, '--connections', String(OPEN_STREAMS)], {}, readyPort);
  const classify = only ? undefined : await startProcess('classify', ['--import', 'tsx', 'bench/passthrough.ts', '--classify', join(REPO, 'routing_policy.yaml'), '--upstream', `http://127.0.0.1:${upstream.port}`, '--connections', String(OPEN_STREAMS)], {}, readyPort);
  const tcp = only ? undefined : await startProcess('tcp', ['--import', 'tsx', 'bench/passthrough.ts', '--tcp', '--upstream', `http://127.0.0.1:${upstream.port}`], {}, readyPort);
  const nginxBin = flags['no-nginx'] || only ? null : ensureCommand('nginx', 'nginx-light', 'The nginx reference column is left out.');
  if (flags.profile) rmSync(profileDir, { recursive: true, force: true });
  const startRouter = (name: string, root: string, profile: boolean, requestLog = true) => {
    const policyPath = join(work, `${name}-policy.yaml`);
    writeFileSync(policyPath, benchPolicy(root, upstream.port, requestLog));
    const args = [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${only ? join(profileDir, name) : profileDir}`] : []), join(root, 'bin/homelab-router.js'), 'serve', '--policy', policyPath, '--listen', '127.0.0.1:0'];
    return startProcess(name, args, routerEnv(work, name), routerPort);
  };
  const router = await startRouter('router', flags.router ?? REPO, flags.profile);
  const targets: Target[] = only ? [upstream] : [upstream, passthrough!, buffered!, classify!, tcp!];
  if (nginxBin) targets.push(await startNginx(nginxBin, work, upstream.port));
  if (flags.express) targets.push(await startProcess('express', ['--import', 'tsx', 'bench/express-proxy.ts', '--upstream', `http://127.0.0.1:${upstream.port}`], {}, readyPort));
  if (flags.compare) targets.push(await startRouter('compare', flags.compare, false));
  if (flags['request-log'] || only) targets.push(await startRouter('nolog', flags.router ?? REPO, only && flags.profile, false));
  targets.push(router);
  const label = (t: Target) => (t === upstream ? 'direct' : t.name);
  progress(`started: ${targets.map((t) => `${label(t)} :${t.port}`).join(', ')}`);

  // Let the router's first health probes and the JIT settle, then read its idle RSS.
  await new Promise((r) => setTimeout(r, 1500));
  const rssIdle = rssMb(router.proc.pid!);
  const rssIdleCompare = flags.compare ? rssMb(targets.find((t) => t.name === 'compare')!.proc.pid!) : NaN;
  const passRssIdle = passthrough ? rssMb(passthrough.proc.pid!) : NaN;

  const script = wrkScript(work, NON_STREAM_BODY);
  progress('warm-up: 2 s at c=32 per target');
  for (const t of targets) {
    const w = await runWrk(wrk, script, t, 32, 2);
    if (w.errors > 0 || w.requests === 0) throw new Error(`warm-up against ${label(t)}: ${w.errors} errors of ${w.requests} requests`);
  }

  type PerTarget<T> = Record<string, T[]>;
  const c32: PerTarget<WrkResult> = {};
  const c1: PerTarget<WrkResult> = {};
  const s1: PerTarget<StreamRun> = {};
  const s16: PerTarget<StreamRun> = {};
  const order = (r: number) => (r % 2 === 0 ? targets : [...targets].reverse());
  const loopP99: Record<string, number[]> = {};

  const pids = targets.map((t) => t.proc.pid!);
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of order(r)) {
      const lagged = (flags['request-log'] || only) && (t.name === 'router' || t.name === 'nolog');
      if (lagged) await eventLoopP99Ms(t); // resets the router's event-loop histogram
      const cpu0 = cpuSeconds(t.proc.pid!);
      const res = await runWrk(wrk, script, t, 32, C32_S);
      if (lagged) res.queuedAtEnd = await requestLogQueued(t);
      res.settleMs = await settle(pids);
      res.settledCpuUsPerReq = ((cpuSeconds(t.proc.pid!) - cpu0) * 1e6) / res.requests;
      if (lagged) (loopP99[t.name] ??= []).push(await eventLoopP99Ms(t));
      (c32[label(t)] ??= []).push(res);
      progress(`round ${r + 1}/${ROUNDS} non-stream c=32 ${label(t).padEnd(11)} ${fmt.rps(res.rps).padStart(6)} rps  p50 ${fmt.us(res.p50Us)}  p99 ${fmt.us(res.p99Us)}  cpu ${res.cpuUsPerReq.toFixed(0)} µs/req (main ${res.mainCpuUsPerReq.toFixed(0)}; ${res.settledCpuUsPerReq.toFixed(0)} until idle, ${res.settleMs} ms after)${res.queuedAtEnd !== undefined ? `  log rows waiting ${res.queuedAtEnd}` : ''}${res.errors ? `  ERRORS ${res.errors}` : ''}`);
    }
    for (const t of order(r + 1)) {
      await settle(pids);
      const res = await runWrk(wrk, script, t, 1, C1_S);
      (c1[label(t)] ??= []).push(res);
      progress(`round ${r + 1}/${ROUNDS} non-stream c=1  ${label(t).padEnd(11)} ${fmt.rps(res.rps).padStart(6)} rps  p50 ${fmt.us(res.p50Us)}  p99 ${fmt.us(res.p99Us)}${res.errors ? `  ERRORS ${res.errors}` : ''}`);
    }
  }
  if (flags['request-log-only']) {
    for (const t of [...targets].reverse()) await stopProcess(t);
    writeRequestLogOnly(c32, c1, loopP99, load0);
    if (flags.profile) progress(`profiles of router and nolog (each thread its own file) in ${profileDir}`);
    return;
  }
  const rssAfterLoad = rssMb(router.proc.pid!);

  // The classifying proxy relays a stream exactly as the buffered one does.
  const streamTargets = targets.filter((t) => t.name !== 'express' && t.name !== 'classify');
  const rssAfterLoadCompare = flags.compare ? rssMb(targets.find((t) => t.name === 'compare')!.proc.pid!) : NaN;
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of order(r).filter((x) => streamTargets.includes(x))) {
      const a = await runStreams(t, 1, STREAMS_C1);
      (s1[label(t)] ??= []).push(a);
      const b = await runStreams(t, 16, STREAMS_C16);
      (s16[label(t)] ??= []).push(b);
      progress(`round ${r + 1}/${ROUNDS} stream ${label(t).padEnd(11)} c=1 ttfb ${fmt.ms(a.ttfbP50Ms)} total ${fmt.ms(a.totalP50Ms)} | c=16 ttfb ${fmt.ms(b.ttfbP50Ms)} total ${fmt.ms(b.totalP50Ms)} cpu ${b.cpuUsPerChunk.toFixed(1)} µs/chunk${a.failed + b.failed ? `  FAILED ${a.failed + b.failed}` : ''}`);
    }
  }

  progress(`opening ${OPEN_STREAMS} streams at once through the router`);
  const open = await rssWithOpenStreams(router, OPEN_STREAMS);
  progress(`router RSS with ${open.openAtSample} streams open: ${fmt.mb(open.rssMb)} (${open.ok}/${OPEN_STREAMS} completed with [DONE])`);
  const passOpen = await rssWithOpenStreams(passthrough!, OPEN_STREAMS);
  const compareTarget = targets.find((t) => t.name === 'compare');
  const compareOpen = compareTarget ? await rssWithOpenStreams(compareTarget, OPEN_STREAMS) : null;

  progress('one request to the upstream from this process: raw socket against undici');
  const leg = await clientLeg(upstream.port);
  progress(`raw socket ${leg.rawBusyUs.toFixed(0)} µs, undici ${leg.undiciBusyUs.toFixed(0)} µs back to back; after 5 ms idle ${leg.rawIdleUs.toFixed(0)} µs and ${leg.undiciIdleUs.toFixed(0)} µs`);
  // --request-log: the log's cost inside one router too; router and nolog are two processes,
  // whose speeds on a shared VM drift apart within seconds (one round's ratio said 1.33×).
  for (const t of targets.filter((x) => x !== upstream)) await stopProcess(t);
  const toggled = flags['request-log'] ? await measureToggle(wrk, work, upstream, flags.router ?? REPO, togglePairs()) : null;
  await stopProcess(upstream);
  const profileTop = flags.profile ? topOfProfile(profileDir, 25) : [];

  const hops = await hopLatency();
  progress(`loopback round trip: ${hops.busyUs.toFixed(0)} µs back to back, ${hops.idleUs.toFixed(0)} µs after 5 ms idle`);
  progress('classifier micro-bench (servers stopped)');
  // In a fresh process: this one's heap and JIT state after the loads would skew it.
  const cls = spawnSync(process.execPath, ['--import', 'tsx', 'bench/classifier.ts', '--json'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  if (cls.status !== 0) throw new Error(`bench/classifier.ts failed:\n${cls.stderr}`);
  const classifier = JSON.parse(cls.stdout.trim().split('\n').at(-1)!) as ClassifierResult[];
  const load1 = loadavg();

  // ------------------------------------------------------------------------------------------
  // Summaries (median over rounds)
  const med = <T>(runs: PerTarget<T>, name: string, pick: (x: T) => number) => median((runs[name] ?? []).map(pick));
  const names = targets.map(label);
  const row = (title: string, runs: PerTarget<any>, pick: (x: any) => number, show: (v: number) => string, lowerIsBetter = true) => {
    const v = Object.fromEntries(names.map((n) => [n, med(runs, n, pick)]));
    const rd = v.router! / v.direct!;
    const rp = v.router! / v.passthrough!;
    return { title, values: v, vsDirect: rd, vsPassthrough: rp, vsBuffered: v.router! / v.buffered!, show, lowerIsBetter };
  };
  const rows = [
    row('non-stream RPS, c=32', c32, (x: WrkResult) => x.rps, fmt.rps, false),
    row('non-stream p50, c=32', c32, (x: WrkResult) => x.p50Us, fmt.us),
    row('non-stream p99, c=32', c32, (x: WrkResult) => x.p99Us, fmt.us),
    row('non-stream p50, c=1', c1, (x: WrkResult) => x.p50Us, fmt.us),
    row('non-stream p99, c=1', c1, (x: WrkResult) => x.p99Us, fmt.us),
    row('CPU per request, c=32 (target process)', c32, (x: WrkResult) => x.cpuUsPerReq, fmt.us),
    row('stream TTFB p50, c=1', s1, (x: StreamRun) => x.ttfbP50Ms, fmt.ms),
    row('stream total p50, c=1', s1, (x: StreamRun) => x.totalP50Ms, fmt.ms),
    row('stream TTFB p50, c=16', s16, (x: StreamRun) => x.ttfbP50Ms, fmt.ms),
    row('stream TTFB p99, c=16', s16, (x: StreamRun) => x.ttfbP99Ms, fmt.ms),
    row('stream total p50, c=16', s16, (x: StreamRun) => x.totalP50Ms, fmt.ms),
    row('CPU per streamed chunk, c=16 (target process)', s16, (x: StreamRun) => x.cpuUsPerChunk, shown((v) => `${v.toFixed(1)} µs`)),
  ];
  const byTitle = (t: string) => rows.find((r) => r.title === t)!;
  const addedC1Us = byTitle('non-stream p50, c=1').values.router! - byTitle('non-stream p50, c=1').values.direct!;
  const ttfbAdded1Us = (byTitle('stream TTFB p50, c=1').values.router! - byTitle('stream TTFB p50, c=1').values.direct!) * 1000;
  const ttfbAdded16Us = (byTitle('stream TTFB p50, c=16').values.router! - byTitle('stream TTFB p50, c=16').values.direct!) * 1000;
  const c2k = classifier.find((c) => c.label === '2 KB')!;
  const c500k = classifier.find((c) => c.label === '500 KB')!;
  const rpsVsPass = byTitle('non-stream RPS, c=32').vsPassthrough;
  const rpsVsBuffered = byTitle('non-stream RPS, c=32').vsBuffered;
  /** What each proxy adds over the upstream called directly, for one metric (µs). */
  const proxies = names.filter((n) => n !== 'direct');
  const addedOver = (title: string, scale = 1) => Object.fromEntries(proxies.map((n) => [n, (byTitle(title).values[n]! - byTitle(title).values.direct!) * scale]));
  const addedC1 = addedOver('non-stream p50, c=1');
  const addedTtfb1 = addedOver('stream TTFB p50, c=1', 1000);
  const addedTtfb16 = addedOver('stream TTFB p50, c=16', 1000);
  /** Router minus direct in each round, paired: what one round alone would have reported. */
  const addedByRound = <T,>(series: Record<string, T[]>, pick: (x: T) => number, scale = 1) =>
    series.router!.map((x, i) => fmt.signedUs((pick(x) - pick(series.direct![i]!)) * scale)).join(', ');
  const others = (added: Record<string, number>) => proxies.filter((n) => n !== 'router' && n !== 'compare' && added[n] !== undefined && !Number.isNaN(added[n])).map((n) => `${n} ${fmt.signedUs(added[n]!)}`).join(', ');

  const budget: Budget[] = [
    { item: 'non-stream RPS at c=32 vs pass-through', value: fmt.ratio(rpsVsPass), limit: '≥ 0.60× (stretch 0.80×)', ok: rpsVsPass >= 0.6, vsPassthrough: `${fmt.ratio(rpsVsBuffered)} of the buffered pass-through` },
    { item: 'added p50 at c=1 (router − direct)', value: fmt.signedUs(addedC1Us), limit: '≤ 300 µs', ok: addedC1Us <= 300, vsPassthrough: others(addedC1), byRound: addedByRound(c1, (x: WrkResult) => x.p50Us) },
    { item: 'stream TTFB added, c=1 (router − direct)', value: fmt.signedUs(ttfbAdded1Us), limit: '≤ 400 µs', ok: ttfbAdded1Us <= 400, vsPassthrough: others(addedTtfb1), byRound: addedByRound(s1, (x: StreamRun) => x.ttfbP50Ms, 1000) },
    { item: 'stream TTFB added, c=16 (router − direct)', value: fmt.signedUs(ttfbAdded16Us), limit: '≤ 400 µs', ok: ttfbAdded16Us <= 400, vsPassthrough: others(addedTtfb16), byRound: addedByRound(s16, (x: StreamRun) => x.ttfbP50Ms, 1000) },
    { item: `router RSS with ${OPEN_STREAMS} streams open`, value: fmt.mb(open.rssMb), limit: '≤ 150 MB', ok: open.rssMb <= 150 && open.openAtSample === OPEN_STREAMS },
    ...(c32.nolog && c32.buffered ? hotPathBudgets(c32) : []),
    ...(c32.nolog ? [requestLogBudget(c32, loopP99)] : []),
    ...(toggled ? [toggleBudget(toggled)] : []),
    { item: 'classify a 2 KB prompt (facts + classify, CPU)', value: formatUs(c2k.totalUs), limit: '< 50 µs', ok: c2k.totalUs < 50 },
    { item: 'classify a 500 KB prompt (facts + classify, CPU)', value: formatUs(c500k.totalUs), limit: '< 5 ms', ok: c500k.totalUs < 5000 },
  ];

  const failures = [...Object.values(c32), ...Object.values(c1)].flat().reduce((n, r) => n + r.errors, 0) + [...Object.values(s1), ...Object.values(s16)].flat().reduce((n, r) => n + r.failed, 0);

  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os: existsSync('/etc/debian_version') ? `Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}` : process.platform,
    node: process.version,
    wrk: spawnSync(wrk, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? '',
    loadavgStart: load0.map((l) => Number(l.toFixed(2))),
    loadavgEnd: load1.map((l) => Number(l.toFixed(2))),
  };
  const date = new Date().toISOString();

  // ------------------------------------------------------------------------------------------
  // Markdown
  const head = `| metric | ${names.join(' | ')} | router ÷ direct | router ÷ pass-through | router ÷ buffered |`;
  const sep = `|---|${names.map(() => '---:').join('|')}|---:|---:|---:|`;
  const lines = [
    `# homelab-router overhead — ${date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGb} GB, ${machine.os}, kernel ${machine.kernel}, Node ${machine.node}, ${machine.wrk.split(' Copyright')[0]}. ` +
      `Load average ${machine.loadavgStart.join(' ')} at start, ${machine.loadavgEnd.join(' ')} at end. Router at ${gitInfo()}.`,
    '',
    `Everything on 127.0.0.1; one fake upstream (bench/fake-upstream.ts). Non-stream: wrk -t1, POST of a 1 KB chat body, ${C32_S} s at c=32 and ${C1_S} s at c=1. ` +
      `Streams: ${STREAM_CHUNKS} chunks ${STREAM_INTERVAL_MS} ms apart, ${STREAMS_C1} streams at c=1 and ${STREAMS_C16} at c=16 per round. ` +
      `Median of ${ROUNDS} interleaved round(s). CPU = the target process's user+system time over the load, per request or chunk.` +
      (failures ? ` **${failures} failed requests or streams: see the JSON.**` : ' Every request and stream succeeded.'),
    '',
    head,
    sep,
    ...rows.map((r) => `| ${r.title} | ${names.map((n) => (Number.isNaN(r.values[n]) ? '–' : r.show(r.values[n]!))).join(' | ')} | ${fmt.ratio(r.vsDirect)} | ${fmt.ratio(r.vsPassthrough)} | ${fmt.ratio(r.vsBuffered)} |`),
    '',
    `| added over direct | ${proxies.join(' | ')} |`,
    `|---|${proxies.map(() => '---:').join('|')}|`,
    `| non-stream p50 at c=1 | ${proxies.map((n) => fmt.signedUs(addedC1[n]!)).join(' | ')} |`,
    `| stream TTFB p50 at c=1 | ${proxies.map((n) => (Number.isNaN(addedTtfb1[n]) ? '–' : fmt.signedUs(addedTtfb1[n]!))).join(' | ')} |`,
    `| stream TTFB p50 at c=16 | ${proxies.map((n) => (Number.isNaN(addedTtfb16[n]) ? '–' : fmt.signedUs(addedTtfb16[n]!))).join(' | ')} |`,
    `| CPU per request at c=32 | ${proxies.map((n) => fmt.us(byTitle('CPU per request, c=32 (target process)').values[n]!)).join(' | ')} |`,
    '',
    '| RSS | pass-through | router |',
    '|---|---:|---:|',
    `| idle (after start) | ${fmt.mb(passRssIdle)} | ${fmt.mb(rssIdle)} |`,
    `| after the non-stream loads | – | ${fmt.mb(rssAfterLoad)} |`,
    `| with ${OPEN_STREAMS} streams open | ${fmt.mb(passOpen.rssMb)} | ${fmt.mb(open.rssMb)} (${open.openAtSample} open, ${open.ok} completed) |`,
    ...(compareOpen ? [`| compare (${flags.compare}): idle / after load / ${OPEN_STREAMS} open | – | ${fmt.mb(rssIdleCompare)} / ${fmt.mb(rssAfterLoadCompare)} / ${fmt.mb(compareOpen.rssMb)} |`] : []),
    '',
    '| classifier (CPU per call, median) | facts | classify | total | total p95 | wall (total) | bucket |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...classifier.map((c: ClassifierResult) => `| ${c.label} prompt | ${formatUs(c.factsUs)} | ${formatUs(c.classifyUs)} | ${formatUs(c.totalUs)} | ${formatUs(c.totalP95Us)} | ${formatUs(c.totalWallUs)} | ${c.bucket} |`),
    '',
    '## Budget',
    '',
    '| item | measured (median of rounds) | by round | budget | met | the references, same run |',
    '|---|---:|---:|---:|:---:|---:|',
    ...budget.map((b) => `| ${b.item} | ${b.value} | ${b.byRound ?? ''} | ${b.limit} | ${b.ok ? 'yes' : '**no**'} | ${b.vsPassthrough ?? ''} |`),
    '',
    `One loopback round trip between two processes on this machine: ${hops.busyUs.toFixed(0)} µs back to back, ${hops.idleUs.toFixed(0)} µs after 5 ms idle. ` +
      'A request through any proxy crosses two more such hops than one sent straight to the upstream, and a stream starts after idle. nginx (C, one process) shows what the hops alone cost; tcp shows what they cost through a Node process that copies bytes without HTTP; the pass-through columns show what Node\'s HTTP server and client add on top, before the router does anything of its own.',
    '',
    `One POST of the 1 KB body to the upstream and its whole answer, from a Node process: ${leg.rawBusyUs.toFixed(0)} µs over a raw socket and ${leg.undiciBusyUs.toFixed(0)} µs through undici back to back; ` +
      `${leg.rawIdleUs.toFixed(0)} µs and ${leg.undiciIdleUs.toFixed(0)} µs after 5 ms idle. The difference is Node's HTTP client machinery alone, paid by every Node proxy on its upstream leg, and most of all when the process has gone idle (a stream's first request).`,
    '',
  ];
  if (profileTop.length) lines.push('## Router CPU profile (self time, top 25)', '', '```', ...profileTop, '```', '');
  const md = lines.join('\n');

  const stamp = date.replace(/[:]/g, '-').replace(/\..*$/, '');
  writeFileSync(join(RESULTS, `${stamp}.json`), JSON.stringify({ date, machine, git: gitInfo(), settings: { rounds: ROUNDS, c32Seconds: C32_S, c1Seconds: C1_S, streamsC1: STREAMS_C1, streamsC16: STREAMS_C16, streamChunks: STREAM_CHUNKS, streamIntervalMs: STREAM_INTERVAL_MS, bodyBytes: NON_STREAM_BODY.length }, rounds: { c32, c1, streamsC1: s1, streamsC16: s16 }, rss: { routerIdleMb: rssIdle, routerAfterLoadMb: rssAfterLoad, routerOpenStreams: open, passthroughIdleMb: passRssIdle, passthroughOpenStreams: passOpen, ...(compareOpen ? { compareIdleMb: rssIdleCompare, compareAfterLoadMb: rssAfterLoadCompare, compareOpenStreams: compareOpen } : {}) }, hopLatency: hops, clientLeg: leg, ...(toggled ? { requestLogToggled: toggled } : {}), classifier, summary: rows.map((r) => ({ metric: r.title, values: r.values, routerVsDirect: r.vsDirect, routerVsPassthrough: r.vsPassthrough })), budget, profileTop }, null, 2) + '\n');
  writeFileSync(join(RESULTS, 'latest.md'), md);
  rmSync(work, { recursive: true, force: true });
  console.log('\n' + md);
  progress(`wrote bench/results/latest.md and bench/results/${stamp}.json${flags.profile ? ` (profile in ${profileDir})` : ''}`);
  if (failures > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exit(1);
});
