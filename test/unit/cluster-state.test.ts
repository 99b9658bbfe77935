// Drains and the leader lock shared through a real Redis, between two Cluster instances that
// stand for two replicas.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../../router/cluster/cluster.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { pollUntil } from '../helpers/poll.ts';

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

/** Waits for a condition that Redis traffic or a lock timer sets (bounded: 5 s). */
async function until(cond: () => boolean): Promise<void> {
  await pollUntil('the condition', () => (cond() ? true : undefined), { tries: 200, everyMs: 25 });
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

test('cluster – only the replica holding the lock probes; its probe results reach the others and wait for late starters', async () => {
  const prefix = `h${++n}:`;
  const a = await replica('a', prefix);
  const b = await replica('b', prefix);
  await until(() => a.leader.held || b.leader.held);
  const [prober, other] = a.leader.held ? [a, b] : [b, a];
  assert.equal(prober.mayProbe(), true);
  assert.equal(other.mayProbe(), false);
  assert.equal(other.watchdogBlocked(), 'another replica holds the watchdog lock');
  const seen: string[] = [];
  other.onProbe((route, r) => seen.push(`${route}:${r.ok}`));
  const result = { ok: false, busy: false, loading: false, cuda: false, error: 'connect ECONNREFUSED', latencyMs: 3, at: Date.now() };
  other.publishProbe('gpu', result); // not the prober: publishes nothing
  prober.publishProbe('gpu', result);
  await until(() => seen.length > 0);
  assert.deepEqual(seen, ['gpu:false']);
  const late = await replica('c', prefix);
  assert.deepEqual((await late.lastProbes()).map((e) => [e.route, e.result.ok]), [['gpu', false]]);
});
