// Drains and the leader lock shared through a real Redis, between two Cluster instances that
// stand for two replicas.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../../router/cluster/cluster.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

let redis: RedisServer;
const open: Cluster[] = [];
let n = 0;
const quiet = { warn: () => undefined, info: () => undefined };

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await redis.close();
});

async function replica(id: string, prefix: string): Promise<Cluster> {
  const c = new Cluster({ redis_url: redis.url, replica_id: id, lease_ttl_ms: 600, replicas: 2, command_timeout_ms: 250, key_prefix: prefix }, quiet);
  open.push(c);
  await c.start();
  return c;
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), 'condition not reached');
}

test('cluster – a drain on one replica reaches the other through pub/sub, and a replica started later reads it', async () => {
  const prefix = `d${++n}:`;
  const a = await replica('a', prefix);
  const b = await replica('b', prefix);
  a.drains.setDrained('gpu', true);
  assert.equal(a.drains.isDrained('gpu'), true, 'the drain holds at once where it was made');
  await until(() => b.drains.isDrained('gpu'));
  const late = await replica('c', prefix);
  assert.equal(late.drains.isDrained('gpu'), true);
  b.drains.setDrained('gpu', false);
  await until(() => !a.drains.isDrained('gpu') && !late.drains.isDrained('gpu'));
});

test('cluster – exactly one replica holds the probe lock; when it stops, another takes it within the lease', async () => {
  const prefix = `l${++n}:`;
  const a = await replica('a', prefix);
  const b = await replica('b', prefix);
  await until(() => a.leader.held || b.leader.held);
  assert.notEqual(a.leader.held, b.leader.held, 'one holder, never two');
  const [holder, other] = a.leader.held ? [a, b] : [b, a];
  await holder.close();
  await until(() => other.leader.held);
});

test('cluster – health published by one replica reaches the others', async () => {
  const prefix = `h${++n}:`;
  const a = await replica('a', prefix);
  const b = await replica('b', prefix);
  const seen: string[] = [];
  b.onHealth((e) => seen.push(`${e.route}:${e.healthy}`));
  a.publishHealth({ route: 'gpu', healthy: false, consecutive_failures: 2, last_error: 'connect ECONNREFUSED', last_probe_at: Date.now(), latency_ms: null, busy_until: 0 });
  await until(() => seen.length > 0);
  assert.deepEqual(seen, ['gpu:false']);
  assert.equal((await b.sharedHealth())[0]?.healthy, false);
});
