// API keys made at run time on replicas of a cluster (SPEC §12 with §14): a key created,
// changed or revoked through one router's admin API is honoured by every router, a router
// that was down when it happened learns it at start, and with Redis away each router serves
// the keys in its own keys.db and writes what changed back when Redis returns. Real
// `homelab-router serve` processes, a real redis-server, a simulated upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSimUpstream, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import type { ServeProcess } from '../helpers/cli.ts';
import { admin, chat, clusterPolicyFile, replicaDir, startReplica } from '../helpers/cluster.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

let redis: RedisServer;
let upstream: SimUpstream;
const routers: ServeProcess[] = [];

before(async () => {
  redis = await startRedis();
  upstream = await startSimUpstream({ model: 'cpu-model', slots: 64 });
});

after(async () => {
  await Promise.all(routers.map((r) => r.stop()));
  await upstream?.close();
  await redis?.close();
});

async function start(id: string, policy: string, dir?: string): Promise<ServeProcess> {
  const r = await startReplica(id, policy, dir);
  routers.push(r);
  return r;
}

/** The status a request with `key` gets from `base` (the upstream answers 200 to any that passes). */
async function statusWith(base: string, key: string): Promise<number> {
  const r = await chat(base, 'cpu-model', 'hello', { authorization: `Bearer ${key}` });
  await r.body?.cancel();
  return r.status;
}

/** Bounded wait (2 s) for `base` to answer `want` to requests with `key`. */
async function honoured(what: string, base: string, key: string, want: number): Promise<void> {
  await pollUntil(what, async () => ((await statusWith(base, key)) === want ? true : undefined), { tries: 40, everyMs: 50 });
}

function policy(prefix: string): string {
  return clusterPolicyFile({ redisUrl: redis.url, prefix, gpuUrl: upstream.url, cpuUrl: upstream.url, replicas: 3, extra: { auth: { mode: 'keys' } } });
}

test('cluster keys – created, limited and revoked on one router, honoured by all three', async () => {
  const p = policy('k1:');
  const [a, b, c] = await Promise.all([start('a', p), start('b', p), start('c', p)]);
  const created = await admin(a.base, 'POST', '/admin/keys', { name: 'frigate' });
  assert.match(created.key, /^hlr_/);
  assert.equal(await statusWith(a.base, created.key), 200);
  await honoured('b to accept the key made on a', b.base, created.key, 200);
  await honoured('c to accept the key made on a', c.base, created.key, 200);

  // A limit changed on b: only gpu-model allowed now, so cpu-model is refused everywhere.
  await admin(b.base, 'PATCH', `/admin/keys/${created.id}`, { models: ['gpu-model'] });
  await honoured('a to apply the models changed on b', a.base, created.key, 403);
  await honoured('c to apply the models changed on b', c.base, created.key, 403);
  await admin(b.base, 'PATCH', `/admin/keys/${created.id}`, { models: ['*'] });
  await honoured('a to apply the second change', a.base, created.key, 200);

  // Rotated on c: the old secret stops working on a and b, the new one works there.
  const rotated = await admin(c.base, 'POST', `/admin/keys/${created.id}/rotate`);
  await honoured('a to refuse the old secret', a.base, created.key, 401);
  await honoured('a to accept the new secret', a.base, rotated.key, 200);
  await honoured('b to accept the new secret', b.base, rotated.key, 200);

  // Revoked on c.
  await admin(c.base, 'DELETE', `/admin/keys/${created.id}`);
  await honoured('a to refuse the revoked key', a.base, rotated.key, 401);
  await honoured('b to refuse the revoked key', b.base, rotated.key, 401);
  const listed = (await admin(a.base, 'GET', '/admin/keys')).keys.find((k: any) => k.id === created.id);
  assert.equal(listed.revoked, true);
  await Promise.all([a.stop(), b.stop(), c.stop()]);
});

test('cluster keys – a router that was down learns the keys made meanwhile at start', async () => {
  const p = policy('k2:');
  const cDir = replicaDir('c');
  const [a, c] = await Promise.all([start('a', p), start('c', p, cDir)]);
  const old = await admin(a.base, 'POST', '/admin/keys', { name: 'old' });
  await honoured('c to accept the first key', c.base, old.key, 200);
  await c.stop();
  const fresh = await admin(a.base, 'POST', '/admin/keys', { name: 'made-while-c-was-down' });
  await admin(a.base, 'DELETE', `/admin/keys/${old.id}`);
  const c2 = await start('c', p, cDir);
  // Read at start, before it answers /readyz: no wait.
  assert.equal(await statusWith(c2.base, fresh.key), 200);
  assert.equal(await statusWith(c2.base, old.key), 401, 'the key revoked while c was down is refused by c, although c\'s keys.db had it live');
  await Promise.all([a.stop(), c2.stop()]);
});

test('cluster keys – Redis away: each router serves its keys.db; changes made meanwhile reach the others when it returns', async () => {
  const p = policy('k3:');
  const [a, b] = await Promise.all([start('a', p), start('b', p)]);
  const kept = await admin(a.base, 'POST', '/admin/keys', { name: 'kept' });
  const doomed = await admin(a.base, 'POST', '/admin/keys', { name: 'doomed' });
  await honoured('b to accept the key', b.base, kept.key, 200);
  await honoured('b to accept the second key', b.base, doomed.key, 200);

  await redis.stop();
  await pollUntil('b to see Redis gone', async () => ((await (await fetch(`${b.base}/readyz`)).json()) as any).cluster.redis === 'down' ? true : undefined, { tries: 100, everyMs: 50 });
  assert.equal(await statusWith(b.base, kept.key), 200, 'b keeps serving the keys it has');
  const during = await admin(a.base, 'POST', '/admin/keys', { name: 'made-during-outage' });
  await admin(b.base, 'DELETE', `/admin/keys/${doomed.id}`);
  assert.equal(await statusWith(a.base, during.key), 200, 'a serves the key it made');
  assert.equal(await statusWith(b.base, doomed.key), 401, 'b refuses the key it revoked');

  // A Redis without persistence comes back empty: the routers' keys.db fill it again.
  await redis.start();
  await honoured('b to accept the key made on a during the outage', b.base, during.key, 200);
  await honoured('a to refuse the key revoked on b during the outage', a.base, doomed.key, 401);
  assert.equal(await statusWith(b.base, kept.key), 200);
  await Promise.all([a.stop(), b.stop()]);
});
