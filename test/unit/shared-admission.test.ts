// Slots shared by replicas through a real Redis: two SharedAdmission instances with their own
// connections stand for two routers on one route.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { clusterKeys } from '../../router/cluster/keys.ts';
import { RedisLink } from '../../router/cluster/link.ts';
import { SharedAdmission } from '../../router/cluster/shared-admission.ts';
import type { Release } from '../../router/upstream/admission.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { pollUntil } from '../helpers/poll.ts';

let redis: RedisServer;
const links: RedisLink[] = [];
let n = 0;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await Promise.all(links.map((l) => l.close()));
  await redis.close();
});

/** Waits (a bounded number of turns of the event loop) for a condition set by I/O. */
/** Waits for a condition that Redis traffic or a lock timer sets (bounded: 5 s). */
async function until(cond: () => boolean): Promise<void> {
  await pollUntil('the condition', () => (cond() ? true : undefined), { tries: 200, everyMs: 25 });
}

function never(): EventEmitter & { aborted: boolean } {
  return Object.assign(new EventEmitter(), { aborted: false });
}

async function replica(id: string, route: string, over: Partial<ConstructorParameters<typeof SharedAdmission>[0]> = {}) {
  const link = new RedisLink({ url: redis.url, commandTimeoutMs: 500 });
  links.push(link);
  await link.start();
  const adm = new SharedAdmission({ route, slots: 4, queue: 8, queueTimeoutMs: 5000, replicaId: id, replicas: 2, leaseTtlMs: 15000, pollMs: 50, ...over }, link, clusterKeys(`t${n}:`));
  await adm.heartbeat();
  return { link, adm };
}

test('shared admission – two replicas together never hold more than slots; a release on one lets a waiter on the other in', async () => {
  n++;
  const a = await replica('a', 'gpu');
  const b = await replica('b', 'gpu');
  const held: Release[] = [];
  // 12 acquires at once across both replicas against 4 slots: exactly 4 are granted now.
  const tries = Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).adm.acquire(never(), 0));
  const results = await Promise.all(tries);
  const granted = results.filter((r) => r.ok);
  assert.equal(granted.length, 4);
  for (const r of granted) if (r.ok) held.push(r.release);

  const waiting = b.adm.acquire(never(), 5000);
  await until(() => b.adm.queued === 1); // its first try found no slot; it waits in b's queue
  held.pop()!(); // a slot comes free (on whichever replica held it)
  const got = await waiting;
  assert.ok(got.ok);
  if (got.ok) held.push(got.release);
  await a.adm.heartbeat();
  assert.equal(a.adm.labInFlight, 4);
  for (const r of held) r();
  assert.equal(a.adm.inFlight + b.adm.inFlight, 0);
});

test('shared admission – a replica that dies holding slots frees them within lease_ttl_ms', async () => {
  n++;
  const dead = await replica('dead', 'gpu', { leaseTtlMs: 300 });
  const alive = await replica('alive', 'gpu', { leaseTtlMs: 300, replicas: 1 });
  for (let i = 0; i < 4; i++) assert.ok((await dead.adm.acquire(never(), 0)).ok);
  assert.deepEqual(await alive.adm.acquire(never(), 0), { ok: false, why: 'queue_timeout' });
  await dead.link.close(); // no release, no heartbeat: as if killed
  // The waiter is let in once the dead replica's leases expired (bounded by the queue timeout).
  const got = await alive.adm.acquire(never(), 3000);
  assert.ok(got.ok, 'a slot was not freed after the dead replica’s lease TTL');
  if (got.ok) got.release();
});

test('shared admission – without Redis a replica admits only its local share, then re-registers its requests when Redis returns', async () => {
  n++;
  const a = await replica('a', 'gpu', { slots: 5, replicas: 2 });
  await redis.stop();
  const held: Release[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await a.adm.acquire(never(), 0);
    if (r.ok) held.push(r.release);
  }
  assert.equal(a.adm.mode, 'local');
  assert.equal(held.length, 2, 'floor(5 / 2) = 2 slots while Redis is away');
  await redis.start();
  await new Promise<void>((resolve) => a.link.onChange((up) => up && resolve()));
  await a.adm.rejoin();
  await a.adm.heartbeat();
  assert.equal(a.adm.labInFlight, 2, 'the requests admitted locally are leases again');
  for (const r of held) r();
});

test('shared admission – slots another replica borrowed stay off this one\'s share after Redis goes, until those requests can have ended', async () => {
  n++;
  let maxRequestMs = 60_000;
  // slots 4, replicas 2: a share of 2 each.
  const a = await replica('a', 'gpu', { maxRequestMs: () => maxRequestMs });
  const b = await replica('b', 'gpu', { maxRequestMs: () => maxRequestMs });
  const held: Release[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await a.adm.acquire(never(), 0);
    if (r.ok) held.push(r.release);
  }
  assert.equal(held.length, 3, 'a borrowed one slot of b\'s share');
  await b.adm.heartbeat(); // b learns it (each acquire and heartbeat tells)
  await redis.stop();
  // Both replicas must have seen Redis go: a's share below is read in its local mode.
  await until(() => !a.link.up && !b.link.up);
  const bHeld: Release[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await b.adm.acquire(never(), 0);
    if (r.ok) bHeld.push(r.release);
  }
  assert.equal(bHeld.length, 1, 'b takes its share less the slot a borrowed: 3 + 1 = 4 slots at most');
  assert.equal(a.adm.limit, 2);
  assert.deepEqual(await a.adm.acquire(never(), 0), { ok: false, why: 'queue_timeout' }, 'a, over its share, admits nothing');
  // Once every request admitted before the cut can have ended, the whole share is b's again.
  maxRequestMs = 0;
  const more = await b.adm.acquire(never(), 0);
  assert.ok(more.ok);
  if (more.ok) bHeld.push(more.release);
  for (const r of [...held, ...bHeld]) r();
  await redis.start();
  await until(() => a.link.up && b.link.up);
});

test('shared admission – a Redis restarted empty gets back the leases of requests admitted through it before it went', async () => {
  n++;
  const a = await replica('a', 'gpu');
  const held: Release[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await a.adm.acquire(never(), 0);
    if (r.ok) held.push(r.release);
  }
  assert.equal(held.length, 2);
  await redis.stop(); // no persistence: it comes back with no lease
  await until(() => !a.link.up);
  await redis.start();
  await until(() => a.link.up);
  await a.adm.rejoin();
  await a.adm.heartbeat();
  assert.equal(a.adm.labInFlight, 2, 'the two running requests count again in Redis');
  for (const r of held) r();
});
