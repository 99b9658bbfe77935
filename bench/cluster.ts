// `npm run bench:cluster`: what `cluster` adds per request (SPEC §14 budget: at most one Redis
// round trip on admission and one on release), side by side with the same router without it,
// in one run, on this machine.
//
// Two `homelab-router serve` processes with the same policy (one route in front of
// bench/fake-upstream.ts), except that `cluster` adds a cluster block pointing at a
// redis-server on loopback. Loads are interleaved (round 1: plain, cluster; round 2: cluster,
// plain; ...) and bounded in count:
//   latency      c=1, N non-stream requests per round: p50 and p99 per router, medians over rounds
//   throughput   c=16, N requests per round: requests per second
//   redis RTT    c=1 PING to the same Redis: one loopback round trip, for scale
//   commands     Redis MONITOR while M requests go through the cluster router, background work
//                (heartbeats, lock renewals, resyncs) counted over an idle window of the same
//                length and taken off: commands the router sent per request, by name, and the
//                commands Redis ran inside those scripts. INFO commandstats deltas are shown
//                next to them as a cross-check.
// The plain router is checked too: it must send Redis nothing at all.
// Results: bench/results/cluster-latest.md. Everything on 127.0.0.1.
//
// Flags: --rounds N (3)  --requests N (1000, per load per round)  --monitor M (500)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dump as dumpYaml } from 'js-yaml';
import { Pool } from 'undici';
import { createClient } from '@redis/client';
import { runScript } from '../router/cluster/run-script.ts';
import { ACQUIRE, RELEASE } from '../router/cluster/scripts.ts';
import { cliEnv, startServe, type ServeProcess } from '../test/helpers/cli.ts';
import { startRedis } from '../test/helpers/redis.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const OUT = join(REPO, 'bench/results/cluster-latest.md');
const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, requests: { type: 'string', default: '1000' }, monitor: { type: 'string', default: '500' } } });
const ROUNDS = Math.max(1, Math.min(20, Number(flags.rounds)));
const N = Math.max(50, Math.min(100_000, Number(flags.requests)));
const M = Math.max(50, Math.min(10_000, Number(flags.monitor)));
const BODY = JSON.stringify({ model: 'bench-model', messages: [{ role: 'user', content: 'hello there, a short question about the weather' }] });

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const median = (xs: number[]): number => percentile(xs, 50);

async function startUpstream(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench/fake-upstream.ts'), '--port', '0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /\{"ready":true,"port":(\d+)\}/.exec(seen);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`fake upstream exited with ${code}`)));
  });
  return { port, child };
}

function policyFile(dir: string, upstreamPort: number, cluster: Record<string, unknown> | null): string {
  const doc: Record<string, unknown> = {
    version: 1,
    server: { listen: '127.0.0.1:0' },
    // Probes rarely, so the command count sees requests, not health checks.
    health: { interval_s: 3600 },
    classifier: { tie_break: ['general'], default_bucket: 'general' },
    routes: { bench: { url: `http://127.0.0.1:${upstreamPort}/v1`, model: 'bench-model', runtime: 'vllm', context_tokens: 32768, slots: 64, queue: 64, fallback: 'terminal', recovery: { managed: false } } },
    buckets: { general: { route: 'bench' } },
    request_log: { enabled: false },
  };
  if (cluster) doc.cluster = cluster;
  const path = join(dir, cluster ? 'cluster.yaml' : 'plain.yaml');
  writeFileSync(path, dumpYaml(doc));
  return path;
}

/** N requests, `c` at a time: latencies (ms) and requests per second. */
async function load(base: string, c: number, n: number): Promise<{ lat: number[]; rps: number }> {
  const pool = new Pool(base, { connections: c, pipelining: 1 });
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        next++;
        const s = performance.now();
        const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
        lat.push(performance.now() - s);
      }
    }),
  );
  const rps = n / ((performance.now() - t0) / 1000);
  await pool.close();
  return { lat, rps };
}

/** Commands Redis receives while `during` runs, by name; `lua` for those a script ran. */
async function monitor(port: number, during: () => Promise<void>): Promise<{ sent: Map<string, number>; inScripts: Map<string, number> }> {
  const sock = connect(port, '127.0.0.1');
  const sent = new Map<string, number>();
  const inScripts = new Map<string, number>();
  let buf = '';
  let monitoring = false;
  sock.setEncoding('utf8');
  await new Promise<void>((resolve) => {
    sock.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!monitoring) {
          if (line === '+OK') {
            monitoring = true;
            resolve();
          }
          continue;
        }
        // +1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" ...   or   [0 lua] "ZADD" ...
        const m = /^\+\S+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
        if (!m) continue;
        const into = m[1] === 'lua' ? inScripts : sent;
        const name = m[2]!.toUpperCase();
        into.set(name, (into.get(name) ?? 0) + 1);
      }
    });
    sock.write('MONITOR\r\n');
  });
  await during();
  // MONITOR lines trail the commands by a moment.
  await new Promise((r) => setTimeout(r, 300));
  sock.destroy();
  return { sent, inScripts };
}

function minus(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of a) out.set(k, v - (b.get(k) ?? 0));
  return out;
}

async function commandstats(client: { sendCommand(args: string[]): Promise<unknown> }): Promise<Map<string, number>> {
  const text = (await client.sendCommand(['INFO', 'commandstats'])) as string;
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out.set(m[1]!.toUpperCase(), Number(m[2]));
  return out;
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'hr-bench-cluster-'));
  const redis = await startRedis();
  const upstream = await startUpstream();
  const client = createClient({ url: redis.url });
  await client.connect();
  const routers: ServeProcess[] = [];
  try {
    // Heartbeats every lease_ttl_ms / 3 = 20 s: little background traffic in a window.
    const clusterBlock = { redis_url: redis.url, lease_ttl_ms: 60_000, replicas: 2, key_prefix: 'bench:' };
    const start = (name: string, policy: string) => startServe(['--policy', policy], cliEnv({ HOMELAB_ROUTER_LOG_DIR: join(work, name, 'logs'), HOMELAB_ROUTER_DATA_DIR: join(work, name, 'data'), HOMELAB_ROUTER_REPLICA_ID: name }));
    const plain = await start('plain', policyFile(work, upstream.port, null));
    routers.push(plain);
    const cluster = await start('cluster', policyFile(work, upstream.port, clusterBlock));
    routers.push(cluster);
    const targets = { plain, cluster } as const;
    // Warm-up: JIT, connection pools, the scripts loaded in Redis.
    for (const t of Object.values(targets)) {
      await load(t.base, 1, 200);
      await load(t.base, 16, 400);
    }

    const c1: Record<string, { p50: number[]; p99: number[] }> = { plain: { p50: [], p99: [] }, cluster: { p50: [], p99: [] } };
    const c16: Record<string, number[]> = { plain: [], cluster: [] };
    const ping: number[] = [];
    const acquireRtt: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (['plain', 'cluster'] as const) : (['cluster', 'plain'] as const);
      for (const name of order) {
        const r = await load(targets[name].base, 1, N);
        c1[name]!.p50.push(percentile(r.lat, 50));
        c1[name]!.p99.push(percentile(r.lat, 99));
      }
      for (const name of order) c16[name]!.push((await load(targets[name].base, 16, N)).rps);
      const lat: number[] = [];
      for (let i = 0; i < Math.min(N, 1000); i++) {
        const s = performance.now();
        await client.ping();
        lat.push(performance.now() - s);
      }
      ping.push(percentile(lat, 50));
      // The admission script's own round trip, from a client as idle as the router's: take a
      // lease on a key of its own and give it back.
      const scriptLat: number[] = [];
      const c = client as unknown as Parameters<typeof runScript>[0];
      for (let i = 0; i < Math.min(N, 1000); i++) {
        const s = performance.now();
        await runScript(c, ACQUIRE, ['rtt:{x}:leases', 'rtt:{x}:replicas', 'rtt:{x}:waiting'], [`bench|${i}`, 1, 64, 2, 32, 60_000, 0, 'bench']);
        scriptLat.push(performance.now() - s);
        await runScript(c, RELEASE, ['rtt:{x}:leases', 'rtt:{x}:waiting'], [`bench|${i}`, 1, 'rtt:released', 'x']);
      }
      acquireRtt.push(percentile(scriptLat, 50));
      console.log(`round ${round + 1}/${ROUNDS}: c=1 p50 plain ${c1.plain!.p50.at(-1)!.toFixed(3)} ms, cluster ${c1.cluster!.p50.at(-1)!.toFixed(3)} ms`);
    }

    // Commands per request: a window with M requests, and an idle window as long.
    const before = await commandstats(client);
    let busyMs = 0;
    const busy = await monitor(redis.port, async () => {
      const s = performance.now();
      await load(cluster.base, 1, M);
      busyMs = performance.now() - s;
    });
    const after = await commandstats(client);
    const idle = await monitor(redis.port, () => new Promise((r) => setTimeout(r, busyMs)));
    const plainSent = await monitor(redis.port, async () => {
      await load(plain.base, 1, M);
    });
    const sent = minus(busy.sent, idle.sent);
    const inScripts = minus(busy.inScripts, idle.inScripts);
    const stats = minus(after, before);
    stats.delete('INFO');
    const perReq = (n: number): string => (n / M).toFixed(2);
    const totalSent = [...sent.values()].reduce((a, b) => a + b, 0);

    const ms = (x: number): string => x.toFixed(3);
    const p50 = { plain: median(c1.plain!.p50), cluster: median(c1.cluster!.p50) };
    const p99 = { plain: median(c1.plain!.p99), cluster: median(c1.cluster!.p99) };
    const rps = { plain: median(c16.plain!), cluster: median(c16.cluster!) };
    const lines = [
      `# Cluster bench: what \`cluster\` adds per request`,
      ``,
      `${new Date().toISOString()} · node ${process.version} · ${cpus().length} CPU(s), load ${loadavg()[0]!.toFixed(2)} · redis-server on loopback`,
      `Command: \`npm run bench:cluster -- --rounds ${ROUNDS} --requests ${N} --monitor ${M}\``,
      ``,
      `Same router, same policy, one route in front of bench/fake-upstream.ts; \`cluster\` adds the cluster block. Medians over ${ROUNDS} interleaved rounds of ${N} requests each.`,
      ``,
      `| | plain (no cluster) | cluster | added |`,
      `|---|---|---|---|`,
      `| non-stream c=1 p50 (ms) | ${ms(p50.plain)} | ${ms(p50.cluster)} | ${ms(p50.cluster - p50.plain)} |`,
      `| non-stream c=1 p99 (ms) | ${ms(p99.plain)} | ${ms(p99.cluster)} | ${ms(p99.cluster - p99.plain)} |`,
      `| non-stream c=16 (req/s) | ${Math.round(rps.plain)} | ${Math.round(rps.cluster)} | ${(((rps.cluster - rps.plain) / rps.plain) * 100).toFixed(1)} % |`,
      `| one Redis round trip (PING, c=1 p50, ms) | | ${ms(median(ping))} | |`,
      `| the acquire script's round trip (EVALSHA, c=1 p50, ms) | | ${ms(median(acquireRtt))} | |`,
      ``,
      `Redis commands per request (MONITOR over ${M} requests at c=1, less an idle window as long):`,
      ``,
      `| | per request |`,
      `|---|---|`,
      `| **commands sent by the router (each one round trip)** | **${perReq(totalSent)}** |`,
      ...[...sent].filter(([, n]) => n / M >= 0.01).sort().map(([k, n]) => `| ${k} sent | ${perReq(n)} |`),
      ...[...inScripts].filter(([, n]) => n / M >= 0.01).sort().map(([k, n]) => `| ${k} run inside the scripts | ${perReq(n)} |`),
      `| INFO commandstats delta, all calls (scripts' own included, background not taken off) | ${perReq([...stats.values()].reduce((a, b) => a + b, 0))} |`,
      `| commands the router without cluster sent over ${M} requests | ${[...plainSent.sent.values()].reduce((a, b) => a + b, 0)} |`,
      ``,
      `Admission is one EVALSHA (the acquire script: lease taken or refused in one step), awaited; release is one EVALSHA (remove the lease; publish the free slot when some replica has a request waiting), not awaited: the answer does not wait for it.`,
    ];
    const summary = lines.join('\n') + '\n';
    console.log('\n' + summary);
    mkdirSync(join(REPO, 'bench/results'), { recursive: true });
    writeFileSync(OUT, summary);
    console.log(`written to ${relative(process.cwd(), OUT)}`);
    return 0;
  } finally {
    await Promise.all(routers.map((r) => r.stop()));
    await client.close().catch(() => undefined);
    upstream.child.kill('SIGTERM');
    await redis.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
