// `npm run soak -- --replicas 3`: a bounded chaos run across replicas (SPEC §14).
//
// N `homelab-router serve` processes share one redis-server on loopback, in front of two
// simulated upstreams: `gpu` (3 slots, the one the replicas fight over) and `cpu` (its
// fallback). A bounded pool of clients spreads requests over the replicas (pinned and auto,
// streamed and not, some taking 2 slots with n: 2, some aborted by the client) while faults
// come in bounded numbers: a replica killed (SIGKILL) and started again, Redis killed and
// started again (empty: no persistence), upstream 5xx, hangs and deaths mid-stream.
//
// What must hold at the end (exit 1 otherwise):
//   lost = 0      every request got a complete answer, a clean error (envelope; 503 with
//                 Retry-After), the abort its client chose, or was cut by the kill of the
//                 replica serving it (counted apart: a client sees a reset connection).
//   leaked = 0    once traffic stops, every live replica's in_flight and queued are 0 and no
//                 live lease is left in Redis.
//   peak <= slots the most generations each upstream ran at once, counted by the simulator.
// Everything listens on and talks to 127.0.0.1 only.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createClient } from '@redis/client';
import { dump as dumpYaml } from 'js-yaml';
import { Agent, request } from 'undici';
import { startSimUpstream, type Fault, type SimUpstream } from '../router/demo/sim-upstream.ts';
import { cliEnv, startServe, type ServeProcess } from '../test/helpers/cli.ts';
import { startRedis, type RedisServer } from '../test/helpers/redis.ts';
import { mulberry32 } from './seeded-random.ts';

export interface ClusterSoakOptions {
  replicas: number;
  requests: number;
  seconds: number;
  concurrency: number;
  seed: number;
  out: string;
}

const SLOTS = { gpu: 3, cpu: 6 } as const;
const LEASE_TTL_MS = 1500;
const REQUEST_TIMEOUT_MS = 5_000;
const LOST_AFTER_MS = REQUEST_TIMEOUT_MS + 5_000;
const TOKEN = randomBytes(16).toString('hex');
const PREFIX = 'soak:';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


type Outcome = 'ok_2xx' | 'clean_error' | 'client_aborted' | 'cut_by_replica_kill' | 'lost';

interface Replica {
  id: string;
  dir: string;
  proc: ServeProcess | null;
  /** Set while it is being killed and started again: requests to it may be cut. */
  down: boolean;
  killedAt: number;
}

export async function soakCluster(o: ClusterSoakOptions): Promise<number> {
  const rand = mulberry32(o.seed);
  const chance = (p: number): boolean => rand() < p;
  const between = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const work = mkdtempSync(join(tmpdir(), 'hr-soak-cluster-'));
  const redis: RedisServer = await startRedis();
  const sims: Record<'gpu' | 'cpu', SimUpstream> = {
    gpu: await startSimUpstream({ model: 'gpu-model', slots: 1000, latencyMs: 10, tokenIntervalMs: 5, chunks: 8, slotLimit: SLOTS.gpu }),
    cpu: await startSimUpstream({ model: 'cpu-model', slots: 1000, latencyMs: 5, tokenIntervalMs: 3, chunks: 8, slotLimit: SLOTS.cpu }),
  };
  const doc = {
    version: 1,
    server: { listen: '127.0.0.1:0', request_timeout_ms: REQUEST_TIMEOUT_MS, stream_idle_timeout_ms: 1_000 },
    health: { interval_s: 0.5, timeout_ms: 500, unhealthy_after: 2, healthy_after: 1, ejection_base_s: 0.5, ejection_max_s: 2, slow_start_s: 1 },
    classifier: { scope: 'last_user', tie_break: ['chat', 'unknown'], default_bucket: 'unknown' },
    routes: {
      gpu: { url: sims.gpu.url, model: 'gpu-model', runtime: 'vllm', context_tokens: 32768, slots: SLOTS.gpu, queue: 8, queue_timeout_ms: 300, timeout_ms: 1_000, fallback: { busy: 'cpu', outage: 'cpu' }, recovery: { managed: false } },
      cpu: { url: sims.cpu.url, model: 'cpu-model', runtime: 'vllm', context_tokens: 32768, slots: SLOTS.cpu, queue: 8, queue_timeout_ms: 300, timeout_ms: 1_000, fallback: 'terminal', recovery: { managed: false } },
    },
    buckets: { chat: { keywords: ['joke'], route: 'cpu' }, unknown: { route: 'gpu' } },
    cluster: { redis_url: redis.url, lease_ttl_ms: LEASE_TTL_MS, replicas: o.replicas, key_prefix: PREFIX },
  };
  const policyPath = join(work, 'routing_policy.yaml');
  writeFileSync(policyPath, dumpYaml(doc));

  const start = (r: Replica): Promise<ServeProcess> =>
    startServe(['--policy', policyPath], cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN, HOMELAB_ROUTER_LOG_DIR: join(r.dir, 'logs'), HOMELAB_ROUTER_DATA_DIR: join(r.dir, 'data'), HOMELAB_ROUTER_REPLICA_ID: r.id }));
  const replicas: Replica[] = [];
  for (let i = 0; i < o.replicas; i++) {
    const r: Replica = { id: `router-${String.fromCharCode(97 + i)}`, dir: join(work, `r${i}`), proc: null, down: false, killedAt: 0 };
    r.proc = await start(r);
    replicas.push(r);
  }

  const agent = new Agent({ keepAliveTimeout: 2_000, connect: { timeout: 2_000 } });
  const adminAgent = new Agent({ keepAliveTimeout: 2_000, connections: 4 });
  const counts: Record<Outcome, number> = { ok_2xx: 0, clean_error: 0, client_aborted: 0, cut_by_replica_kill: 0, lost: 0 };
  const lostSamples: string[] = [];
  const byCode = new Map<string, number>();
  const faults = { replicaKills: 0, redisRestarts: 0, upstreamFaults: 0 };
  const failures: string[] = [];
  let sent = 0;

  const getJson = async (url: string): Promise<any> => {
    const res = await request(url, { dispatcher: adminAgent, headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: 5_000, bodyTimeout: 5_000, signal: AbortSignal.timeout(5_000) });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
    return JSON.parse(text);
  };

  const sendOne = async (): Promise<Outcome> => {
    // One replica at most is down at a time, so there is always one to send to.
    const alive = replicas.filter((r) => r.proc && !r.down);
    const target = alive[Math.floor(rand() * alive.length)]!;
    const stream = chance(0.5);
    const body: Record<string, unknown> = { model: chance(0.6) ? 'gpu-model' : 'homelab/auto', messages: [{ role: 'user', content: chance(0.2) ? 'tell me a joke' : 'hello' }], stream };
    if (chance(0.05)) body.n = 2;
    const ac = new AbortController();
    const abortPlanned = chance(0.05);
    let weAborted = false;
    const timers = [setTimeout(() => ac.abort(), LOST_AFTER_MS)];
    if (abortPlanned) timers.push(setTimeout(() => ((weAborted = true), ac.abort()), between(0, 100)));
    const sentAt = Date.now();
    let status = 0;
    let text = '';
    let retryAfter: string | undefined;
    try {
      const res = await request(`${target.proc!.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal, dispatcher: agent, headersTimeout: LOST_AFTER_MS, bodyTimeout: LOST_AFTER_MS });
      status = res.statusCode;
      const ra = res.headers['retry-after'];
      retryAfter = Array.isArray(ra) ? ra[0] : ra;
      for await (const chunk of res.body) if (text.length < 100_000) text += (chunk as Buffer).toString('utf8');
    } catch (err) {
      if (weAborted) return 'client_aborted';
      // The replica serving it was killed while it ran: the client sees a reset connection.
      if (target.killedAt >= sentAt || target.down) return 'cut_by_replica_kill';
      if (lostSamples.length < 10) lostSamples.push(`${target.id} status=${status}: ${(err as Error).message}`);
      return 'lost';
    } finally {
      for (const t of timers) clearTimeout(t);
    }
    if (status === 200) {
      if (stream ? /data: \[DONE\]\s*$/.test(text) || /(^|\n)event: error\n/.test(text) : text.includes('"choices"')) return 'ok_2xx';
      if (target.killedAt >= sentAt) return 'cut_by_replica_kill';
      if (lostSamples.length < 10) lostSamples.push(`${target.id} incomplete 200: ${JSON.stringify(text.slice(-160))}`);
      return 'lost';
    }
    let code: string | null = null;
    try {
      code = String((JSON.parse(text) as { error: { code: unknown } }).error.code);
    } catch {
      code = null;
    }
    if (code === null || (status === 503 && retryAfter === undefined)) {
      if (lostSamples.length < 10) lostSamples.push(`${target.id} ${status} without a clean envelope: ${text.slice(0, 160)}`);
      return 'lost';
    }
    byCode.set(`${status} ${code}`, (byCode.get(`${status} ${code}`) ?? 0) + 1);
    return 'clean_error';
  };

  console.log(`soak (cluster): ${o.replicas} replicas, redis ${redis.url}, ${o.requests} requests, ${o.concurrency} clients, ${o.seconds} s cap, seed ${o.seed}`);
  const started = Date.now();
  const stopAt = started + o.seconds * 1000;
  let running = true;

  // A replica killed (SIGKILL, requests in flight) and started again, every ~6 s, at most 4 times.
  const killer = (async () => {
    await sleep(3_000);
    for (let i = 0; running && i < 4; i++) {
      const r = replicas[between(0, replicas.length - 1)]!;
      r.down = true;
      r.killedAt = Date.now();
      r.proc!.child.kill('SIGKILL');
      await new Promise<void>((res) => (r.proc!.child.exitCode !== null || r.proc!.child.signalCode !== null ? res() : r.proc!.child.once('exit', () => res())));
      faults.replicaKills++;
      await sleep(between(500, 1_500));
      r.proc = await start(r);
      r.down = false;
      for (let w = 0; running && w < 6_000; w += 250) await sleep(250);
    }
  })();

  // Redis killed and started again (empty), every ~9 s, at most 3 times.
  const redisChaos = (async () => {
    await sleep(5_000);
    for (let i = 0; running && i < 3; i++) {
      await redis.stop();
      faults.redisRestarts++;
      await sleep(between(500, 2_000));
      await redis.start();
      for (let w = 0; running && w < 9_000; w += 250) await sleep(250);
    }
  })();

  // Upstream faults, at most 300: 5xx, hangs, deaths and stalls mid-stream.
  const faulter = (async () => {
    for (let i = 0; running && i < 300; i++) {
      const sim = chance(0.7) ? sims.gpu : sims.cpu;
      const r = rand();
      const f: Fault = r < 0.3 ? { kind: 'status', status: 500 } : r < 0.45 ? { kind: 'status', status: 502 } : r < 0.6 ? { kind: 'hang' } : r < 0.8 ? { kind: 'die_after', chunks: between(0, 4) } : { kind: 'stall_after', chunks: between(0, 4) };
      sim.pushFault(f);
      faults.upstreamFaults++;
      await sleep(between(100, 300));
    }
  })();

  const worker = async (): Promise<void> => {
    while (sent < o.requests && Date.now() < stopAt) {
      sent++;
      const outcome = await sendOne();
      counts[outcome]++;
      if (outcome === 'clean_error') await sleep(between(50, 200));
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const durationMs = Date.now() - started;
  running = false;
  await Promise.all([killer, redisChaos, faulter]);

  // Settle: queued faults would only meet probes; every replica is up; wait for zero.
  const peak = { gpu: sims.gpu.peakInFlight(), cpu: sims.cpu.peakInFlight() };
  const over = { gpu: sims.gpu.overLimit(), cpu: sims.cpu.overLimit() };
  let leakedRows: string[] = [];
  let liveLeases = -1;
  const redisClient = createClient({ url: redis.url });
  redisClient.on('error', () => undefined);
  await redisClient.connect();
  const leases = async (): Promise<number> => {
    const [s, us] = (await redisClient.sendCommand(['TIME'])) as string[];
    const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    let n = 0;
    for (const route of ['gpu', 'cpu']) n += Number(await redisClient.sendCommand(['ZCOUNT', `${PREFIX}{${route}}:leases`, String(now), '+inf']));
    return n;
  };
  for (let waited = 0; waited <= 15_000; waited += 100) {
    leakedRows = [];
    for (const r of replicas) {
      try {
        for (const u of (await getJson(`${r.proc!.base}/admin/upstreams`)).upstreams) if (u.in_flight !== 0 || u.queued !== 0) leakedRows.push(`${r.id} ${u.route} in_flight=${u.in_flight} queued=${u.queued}`);
      } catch (err) {
        leakedRows.push(`${r.id}: ${(err as Error).message}`);
      }
    }
    liveLeases = await leases();
    if (leakedRows.length === 0 && liveLeases === 0) break;
    await sleep(100);
  }
  const orphans = sims.gpu.inFlight() + sims.cpu.inFlight();
  await redisClient.close();

  const exitCodes: (number | string)[] = [];
  for (const r of replicas) {
    const child = r.proc!.child;
    const exited = new Promise<number | string>((res) => (child.exitCode !== null ? res(child.exitCode) : child.once('exit', (c, sig) => res(c ?? String(sig)))));
    await r.proc!.stop();
    exitCodes.push(await exited);
  }
  const routerErrors = replicas.flatMap((r) => r.proc!.stdout().split('\n').filter((l) => /"level":(50|60)/.test(l)));
  await agent.close();
  await adminAgent.close();
  await Promise.all(Object.values(sims).map((s) => s.close()));
  await redis.close();

  const answered = Object.values(counts).reduce((a, b) => a + b, 0);
  if (answered !== sent) failures.push(`${sent - answered} request(s) never settled on the client`);
  if (counts.lost > 0) failures.push(`${counts.lost} request(s) lost`);
  if (leakedRows.length > 0) failures.push(`slots leaked: ${leakedRows.join(', ')}`);
  if (liveLeases !== 0) failures.push(`${liveLeases} live lease(s) left in Redis`);
  for (const name of ['gpu', 'cpu'] as const) if (peak[name] > SLOTS[name]) failures.push(`${name} ran ${peak[name]} generations at once, above its ${SLOTS[name]} slots:${over[name].map((x) => `\n  - ${x}`).join('')}`);
  if (orphans > 0) failures.push(`${orphans} generation(s) still running upstream after the routers settled`);
  if (routerErrors.length > 0) failures.push(`the routers logged ${routerErrors.length} error(s), e.g. ${routerErrors[0]!.slice(0, 300)}`);
  if (exitCodes.some((c) => c !== 0)) {
    const tails = replicas.filter((_, i) => exitCodes[i] !== 0).map((r) => `${r.id}: ${r.proc!.stdout().trim().split('\n').slice(-4).join(' | ').slice(0, 1200)}`);
    failures.push(`exit codes on SIGTERM: ${exitCodes.join(', ')}; last log lines: ${tails.join('; ')}`);
  }

  const row = (k: string, v: string | number): string => `| ${k} | ${v} |`;
  const leaked = leakedRows.length + Math.max(0, liveLeases);
  const lines = [
    `# Soak run across replicas`,
    ``,
    `${new Date().toISOString()} · node ${process.version} · ${cpus().length} CPU(s) · seed ${o.seed}`,
    `Command: \`npm run soak -- --replicas ${o.replicas} --requests ${o.requests} --seconds ${o.seconds} --concurrency ${o.concurrency} --seed ${o.seed}\``,
    ``,
    `${o.replicas} \`homelab-router serve\` processes, one redis-server (loopback, no persistence), lease_ttl_ms ${LEASE_TTL_MS}.`,
    ``,
    `| Figure | Value |`,
    `|---|---|`,
    row('requests sent', sent),
    row('duration', `${(durationMs / 1000).toFixed(1)} s (${Math.round(sent / Math.max(1, durationMs / 1000))} req/s)`),
    row('2xx, complete (or a stream ending in `event: error`)', counts.ok_2xx),
    row('clean errors (envelope; 503 with Retry-After)', `${counts.clean_error}: ${[...byCode].sort().map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}`),
    row('client-aborted (planned)', counts.client_aborted),
    row('cut by the kill of the replica serving it', counts.cut_by_replica_kill),
    row('**lost**', `**${counts.lost}**`),
    row('faults: replica kills / Redis restarts / upstream faults', `${faults.replicaKills} / ${faults.redisRestarts} / ${faults.upstreamFaults}`),
    row('**leaked** (replica in_flight+queued rows, live leases in Redis, after settling)', `**${leaked}**`),
    row('generations still running upstream after settling', orphans),
    row('errors logged by the routers', routerErrors.length),
    row('exit codes on SIGTERM', exitCodes.join(', ')),
    ``,
    `| Upstream | slots | max concurrency seen by the upstream (all replicas together) |`,
    `|---|---|---|`,
    `| gpu | ${SLOTS.gpu} | **${peak.gpu}** |`,
    `| cpu | ${SLOTS.cpu} | **${peak.cpu}** |`,
    ``,
    failures.length === 0 ? `**PASS**` : `**FAIL**\n\n${failures.map((f) => `- ${f}`).join('\n')}`,
  ];
  if (lostSamples.length > 0) lines.push('', 'Lost samples:', '', ...lostSamples.map((s) => `- ${s}`));
  const summary = lines.join('\n') + '\n';
  console.log('\n' + summary);
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, summary);
  console.log(`written to ${relative(process.cwd(), o.out) || o.out}`);
  if (failures.length === 0) rmSync(work, { recursive: true, force: true });
  else console.log(`router logs kept in ${work}`);
  return failures.length === 0 ? 0 : 1;
}
