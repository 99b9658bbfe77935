// Three routers, one lab (SPEC §14): three `homelab-router serve` processes sharing a real
// redis-server in front of simulated upstreams whose own counters say what they saw. The gpu
// route has 3 slots, so each replica's local share is 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@redis/client';
import { startSimUpstream, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import type { ServeProcess } from '../helpers/cli.ts';
import { admin, chat, clusterPolicyFile, gpuRow, startReplica } from '../helpers/cluster.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const SLOTS = 3;
const LEASE_TTL_MS = 1500;
let redis: RedisServer;
let gpu: SimUpstream;
let cpu: SimUpstream;
const routers: ServeProcess[] = [];

before(async () => {
  redis = await startRedis();
  // The sims take far more than the policy's slots, so their peak is what the routers sent.
  gpu = await startSimUpstream({ model: 'gpu-model', slots: 64, latencyMs: 150, slotLimit: SLOTS });
  cpu = await startSimUpstream({ model: 'cpu-model', slots: 64 });
});

after(async () => {
  await Promise.all(routers.map((r) => r.stop()));
  await Promise.all([gpu?.close(), cpu?.close()]);
  await redis?.close();
});

function policy(prefix: string, gpuUrl = gpu.url): string {
  return clusterPolicyFile({ redisUrl: redis.url, prefix, gpuUrl, cpuUrl: cpu.url, replicas: 3, gpuSlots: SLOTS, leaseTtlMs: LEASE_TTL_MS });
}

async function three(prefix: string, gpuUrl?: string): Promise<ServeProcess[]> {
  const p = policy(prefix, gpuUrl);
  // One after another: three cold starts at once can take long on a shared two-core machine.
  const rs: ServeProcess[] = [];
  for (const id of ['a', 'b', 'c']) {
    rs.push(await startReplica(id, p));
    routers.push(rs.at(-1)!);
  }
  return rs;
}

/** Live (unexpired) leases of the gpu route, read from Redis itself. */
async function liveLeases(prefix: string): Promise<number> {
  const c = createClient({ url: redis.url });
  await c.connect();
  try {
    const [s, us] = (await c.sendCommand(['TIME'])) as string[];
    const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    return Number(await c.sendCommand(['ZCOUNT', `${prefix}{gpu}:leases`, String(now), '+inf']));
  } finally {
    await c.close();
  }
}

const stopAll = (rs: ServeProcess[]) => Promise.all(rs.map((r) => r.stop()));

test('three routers – together they never send the gpu more than its 3 slots; every request is answered', async () => {
  const rs = await three('3t1:');
  gpu.resetStats();
  const answers = await Promise.all(Array.from({ length: 18 }, (_, i) => chat(rs[i % 3]!.base, 'gpu-model')));
  for (const r of answers) assert.equal(r.status, 200, await r.text());
  assert.equal(gpu.completed(), 18);
  assert.ok(gpu.peakInFlight() <= SLOTS, `the gpu saw ${gpu.peakInFlight()} at once from three routers, above its ${SLOTS} slots: ${gpu.overLimit().join('; ')}`);
  assert.equal(gpu.peakInFlight(), SLOTS, 'all three slots were used');
  const row = await gpuRow(rs[2]!.base);
  assert.equal(row.local_share, 1);
  await stopAll(rs);
});

test('three routers – one killed with requests in flight: its slots come back within lease_ttl_ms and a waiter elsewhere gets one', async () => {
  // Requests to this gpu hold their slot until the router that sent them dies.
  const slow = await startSimUpstream({ model: 'gpu-model', slots: 64, latencyMs: 60_000 });
  const [a, b, c] = await three('3t2:', slow.url);
  // a borrows: it holds two of the three slots, b the third.
  const held = [chat(a!.base, 'gpu-model'), chat(a!.base, 'gpu-model')].map((p) => p.catch(() => null));
  await pollUntil('a to hold two gpu slots', async () => ((await gpuRow(c!.base)).lab_in_flight === 2 ? true : undefined), { tries: 100, everyMs: 20 });
  const bHeld = chat(b!.base, 'gpu-model').catch(() => null);
  await pollUntil('the lab to be full', async () => ((await gpuRow(c!.base)).lab_in_flight === 3 ? true : undefined), { tries: 100, everyMs: 20 });
  // c's request waits in c's queue (20 s at most).
  const waiting = chat(c!.base, 'gpu-model').catch(() => null);
  await pollUntil('c to queue its request', async () => ((await gpuRow(c!.base)).queued === 1 ? true : undefined), { tries: 100, everyMs: 20 });
  assert.equal(slow.inFlight(), 3);
  const killedAt = Date.now();
  a!.child.kill('SIGKILL');
  await Promise.all(held);
  // a's two leases expire (1.5 s); a's share (1) stays reserved for it, so c takes one slot.
  await pollUntil("c's request to reach the gpu", () => (slow.inFlight() === 2 && slow.received.length === 4 ? true : undefined), { tries: 200, everyMs: 25 });
  const freedAfterMs = Date.now() - killedAt;
  assert.ok(freedAfterMs < LEASE_TTL_MS + 3000, `a's slots came back ${freedAfterMs} ms after it died (lease_ttl_ms ${LEASE_TTL_MS})`);
  // The admin view counts at each heartbeat (lease_ttl_ms / 3).
  await pollUntil('the lab count to show a gone', async () => ((await gpuRow(c!.base)).lab_in_flight === 2 ? true : undefined), { tries: 100, everyMs: 20 });
  await stopAll([b!, c!]);
  await Promise.all([bHeld, waiting]);
  await slow.close();
});

test('three routers – a drain on one is honoured by the other two, and an undrain too', async () => {
  const [a, b, c] = await three('3t3:');
  await admin(b!.base, 'POST', '/admin/drain/gpu');
  for (const r of [a!, c!]) await pollUntil('the drain to reach every router', async () => ((await gpuRow(r.base)).drained ? true : undefined), { tries: 40, everyMs: 50 });
  for (const r of [a!, c!]) {
    const res = await chat(r.base, 'homelab/auto');
    await res.body?.cancel();
    assert.equal(res.headers.get('x-homelab-route'), 'cpu', 'auto traffic avoids the drained route on every router');
  }
  await admin(c!.base, 'DELETE', '/admin/drain/gpu');
  for (const r of [a!, b!]) await pollUntil('the undrain to reach every router', async () => ((await gpuRow(r.base)).drained ? undefined : true), { tries: 40, everyMs: 50 });
  await stopAll([a!, b!, c!]);
});

test('three routers – Redis stopped and restarted under load: every request answered, the gpu never over its slots', async () => {
  const rs = await three('3t4:');
  gpu.resetStats();
  const statuses: number[] = [];
  const bad: string[] = [];
  let stop = false;
  // Three clients per router, one request after another, bounded in count.
  const client = async (base: string): Promise<void> => {
    for (let i = 0; i < 12 && !stop; i++) {
      const r = await chat(base, 'gpu-model');
      const text = await r.text();
      statuses.push(r.status);
      if (!(r.status === 200 || (r.status === 503 && r.headers.get('retry-after') !== null))) bad.push(`${r.status} ${text.slice(0, 200)}`);
    }
  };
  const load = Promise.all(rs.flatMap((r) => [client(r.base), client(r.base), client(r.base)]));
  await pollUntil('the load to fill the gpu', () => (gpu.completed() >= 6 ? true : undefined), { tries: 200, everyMs: 25 });
  await redis.stop();
  await pollUntil('every router to fall back to its share', async () => {
    for (const r of rs) if (((await (await fetch(`${r.base}/readyz`)).json()) as any).cluster.mode !== 'local') return undefined;
    return true;
  }, { tries: 100, everyMs: 50 });
  const atStop = gpu.completed();
  await pollUntil('requests to complete on the local shares', () => (gpu.completed() >= atStop + 6 ? true : undefined), { tries: 400, everyMs: 25 });
  await redis.start();
  for (const r of rs) await pollUntil('the routers to rejoin', async () => (((await (await fetch(`${r.base}/readyz`)).json()) as any).cluster.mode === 'shared' ? true : undefined), { tries: 100, everyMs: 50 });
  const atStart = gpu.completed();
  await pollUntil('requests to complete after the rejoin', () => (gpu.completed() >= atStart + 6 || statuses.length === 108 ? true : undefined), { tries: 400, everyMs: 25 });
  stop = true;
  await load;
  assert.deepEqual(bad, [], 'every request got an answer or a clean 503 with Retry-After');
  assert.ok(statuses.filter((s) => s === 200).length >= 18);
  assert.ok(gpu.peakInFlight() <= SLOTS, `the gpu saw ${gpu.peakInFlight()} at once, above its ${SLOTS} slots: ${gpu.overLimit().join('; ')}`);
  for (const r of rs) await pollUntil('no slot left held', async () => ((await gpuRow(r.base)).in_flight === 0 ? true : undefined), { tries: 100, everyMs: 50 });
  // Released, not left to expire: no live lease in Redis well before lease_ttl_ms.
  await pollUntil('every lease to be released in Redis', async () => ((await liveLeases('3t4:')) === 0 ? true : undefined), { tries: 10, everyMs: 20 });
  await stopAll(rs);
});
