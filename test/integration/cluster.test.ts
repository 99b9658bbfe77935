// Several routers, one lab (SPEC §14): real `homelab-router serve` processes sharing a real
// redis-server, in front of simulated upstreams whose own counters say what they saw.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startSimUpstream, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import type { ServeProcess } from '../helpers/cli.ts';
import { admin, chat, clusterPolicyFile, startReplica } from '../helpers/cluster.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

let redis: RedisServer;
let gpu: SimUpstream;
let cpu: SimUpstream;
const routers: ServeProcess[] = [];

const KEY = `hlr_${'k'.repeat(43)}`;
const KEY_SHA = createHash('sha256').update(KEY).digest('hex');

function policyFile(prefix: string, gpuUrl = gpu.url, extra: Record<string, unknown> = {}): string {
  return clusterPolicyFile({ redisUrl: redis.url, prefix, gpuUrl, cpuUrl: cpu.url, replicas: 2, extra });
}

async function startRouter(id: string, policy: string): Promise<ServeProcess> {
  const r = await startReplica(id, policy);
  routers.push(r);
  return r;
}

before(async () => {
  redis = await startRedis();
  gpu = await startSimUpstream({ model: 'gpu-model', slots: 64, latencyMs: 150 });
  cpu = await startSimUpstream({ model: 'cpu-model', slots: 64 });
});

after(async () => {
  await Promise.all(routers.map((r) => r.stop()));
  await Promise.all([gpu?.close(), cpu?.close()]);
  await redis?.close();
});

test('cluster – two routers together never send a route more than its slots; every request is answered', async () => {
  const policy = policyFile('t1:');
  const [a, b] = await Promise.all([startRouter('a', policy), startRouter('b', policy)]);
  gpu.resetStats();
  // Pinned to the gpu route: they queue on their replica rather than spill.
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => chat(i % 2 ? a.base : b.base, 'gpu-model')));
  for (const r of answers) assert.equal(r.status, 200, await r.text());
  assert.equal(gpu.completed(), 12);
  assert.ok(gpu.peakInFlight() <= 2, `the gpu saw ${gpu.peakInFlight()} requests at once from two routers, above its 2 slots`);
  assert.equal(gpu.peakInFlight(), 2, 'both slots were used');
  const view = await admin(a.base, 'GET', '/admin/upstreams');
  assert.equal(view.cluster.redis, 'up');
  assert.equal(view.cluster.replica_id, 'a');
  assert.equal(view.upstreams.find((u: any) => u.route === 'gpu').local_share, 1);
  await Promise.all([a.stop(), b.stop()]);
});

test('cluster – a drain on one router is honoured by the other within a second, and survives a restart', async () => {
  const policy = policyFile('t2:');
  const [a, b] = await Promise.all([startRouter('a', policy), startRouter('b', policy)]);
  await admin(a.base, 'POST', '/admin/drain/gpu');
  await pollUntil('router b to see the drain', async () => ((await admin(b.base, 'GET', '/admin/upstreams')).upstreams.find((u: any) => u.route === 'gpu').drained ? true : undefined), { tries: 40, everyMs: 50 });
  const res = await chat(b.base, 'homelab/auto');
  assert.equal(res.headers.get('x-homelab-route'), 'cpu');
  await b.stop();
  const b2 = await startRouter('b', policy);
  assert.equal((await admin(b2.base, 'GET', '/admin/upstreams')).upstreams.find((u: any) => u.route === 'gpu').drained, true, 'a restarted router reads the drain');
  await admin(b2.base, 'DELETE', '/admin/drain/gpu');
  await pollUntil('router a to see the undrain', async () => ((await admin(a.base, 'GET', '/admin/upstreams')).upstreams.find((u: any) => u.route === 'gpu').drained ? undefined : true), { tries: 40, everyMs: 50 });
  await Promise.all([a.stop(), b2.stop()]);
});

test('cluster – a router killed with requests in flight frees its slots within lease_ttl_ms', async () => {
  // Requests to this gpu hold their slot until a's death cuts them.
  const slow = await startSimUpstream({ model: 'gpu-model', slots: 64, latencyMs: 60_000 });
  const policy = policyFile('t3:', slow.url);
  const [a, b] = await Promise.all([startRouter('a', policy), startRouter('b', policy)]);
  const held = [chat(a.base, 'gpu-model'), chat(a.base, 'gpu-model')].map((p) => p.catch(() => null));
  await pollUntil('a to hold both gpu slots', async () => ((await admin(b.base, 'GET', '/admin/upstreams')).upstreams.find((u: any) => u.route === 'gpu').lab_in_flight === 2 ? true : undefined), { tries: 100, everyMs: 20 });
  a.child.kill('SIGKILL');
  await Promise.all(held);
  await pollUntil('the gpu to see a go', () => (slow.inFlight() === 0 ? true : undefined), { tries: 100, everyMs: 20 });
  // b waits in its queue (20 s at most) and gets a slot once a's leases expired (1.5 s).
  await pollUntil('a\'s leases to expire', async () => ((await admin(b.base, 'GET', '/admin/upstreams')).upstreams.find((u: any) => u.route === 'gpu').lab_in_flight === 0 ? true : undefined), { tries: 100, everyMs: 50 });
  const pending = chat(b.base, 'gpu-model').catch(() => null);
  await pollUntil('b\'s request to reach the gpu', () => (slow.inFlight() === 1 ? true : undefined), { tries: 200, everyMs: 20 });
  await b.stop();
  await pending;
  await slow.close();
});

test('cluster – Redis stopped and restarted under load: nothing lost, nothing over-admitted, /readyz says so', async () => {
  const policy = policyFile('t4:');
  const [a, b] = await Promise.all([startRouter('a', policy), startRouter('b', policy)]);
  gpu.resetStats();
  const load = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => chat(i % 2 ? a.base : b.base, 'gpu-model')));
  const first = load(8);
  await redis.stop();
  const during = await load(8);
  const readyA: any = await (await fetch(`${a.base}/readyz`)).json();
  assert.equal(readyA.cluster.redis, 'down');
  assert.equal(readyA.cluster.mode, 'local');
  await redis.start();
  for (const r of [a, b]) await pollUntil("the routers to rejoin", async () => (((await (await fetch(`${r.base}/readyz`)).json()) as any).cluster.redis === 'up' ? true : undefined), { tries: 100, everyMs: 50 });
  const afterwards = await load(8);
  for (const r of [...(await first), ...during, ...afterwards]) assert.ok(r.status === 200 || (r.status === 503 && r.headers.get('retry-after') !== null), `unexpected ${r.status}: ${await r.text()}`);
  assert.ok(gpu.peakInFlight() <= 2, `the gpu saw ${gpu.peakInFlight()} at once, above its 2 slots`);
  const metrics = await (await fetch(`${b.base}/metrics`)).text();
  assert.match(metrics, /^homelab_router_cluster_redis_up 1$/m);
  await Promise.all([a.stop(), b.stop()]);
});

test('cluster – a key\'s rpm is counted across routers, not per router', async () => {
  const policy = policyFile('t5:', gpu.url, { auth: { mode: 'keys', keys: [{ name: 'bot', key_sha256: KEY_SHA, rpm: 4 }] } });
  const [a, b] = await Promise.all([startRouter('a', policy), startRouter('b', policy)]);
  const statuses: number[] = [];
  // One after another, alternating routers: each alone would allow 4.
  for (let i = 0; i < 6; i++) {
    const r = await chat(i % 2 ? a.base : b.base, 'cpu-model', 'hello', { authorization: `Bearer ${KEY}` });
    await r.body?.cancel();
    statuses.push(r.status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
  await Promise.all([a.stop(), b.stop()]);
});
