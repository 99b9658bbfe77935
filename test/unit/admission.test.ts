import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admission, type AcquireResult } from '../../router/upstream/admission.ts';

const never = new AbortController().signal;

async function take(a: Admission, signal = never, wait?: number): Promise<AcquireResult> {
  return a.acquire(signal, wait);
}

test('admission – at most `slots` in flight, then a FIFO queue', async () => {
  const a = new Admission(2, 2, 10_000);
  const r1 = await take(a);
  const r2 = await take(a);
  assert.ok(r1.ok && r2.ok);
  assert.equal(a.inFlight, 2);
  const order: number[] = [];
  const w3 = take(a).then((r) => (order.push(3), r));
  const w4 = take(a).then((r) => (order.push(4), r));
  assert.equal(a.queued, 2);
  const full = await take(a);
  assert.deepEqual(full, { ok: false, why: 'queue_full' });
  r1.release();
  const got3 = await w3;
  assert.ok(got3.ok);
  assert.equal(a.inFlight, 2, 'a freed slot passes straight to the oldest waiter');
  r2.release();
  const got4 = await w4;
  assert.deepEqual(order, [3, 4]);
  assert.ok(got4.ok);
  got3.release();
  got4.release();
  assert.equal(a.inFlight, 0);
  assert.equal(a.queued, 0);
});

test('admission – release is idempotent: counters never go negative', async () => {
  const a = new Admission(1, 0, 0);
  const r = await take(a);
  assert.ok(r.ok);
  r.release();
  r.release();
  assert.equal(a.inFlight, 0);
  const again = await take(a);
  assert.ok(again.ok);
  assert.equal(a.inFlight, 1);
  again.release();
});

test('admission – a waiter times out and leaves the queue', async () => {
  const a = new Admission(1, 1, 5);
  const r = await take(a);
  assert.ok(r.ok);
  const timedOut = await take(a);
  assert.deepEqual(timedOut, { ok: false, why: 'queue_timeout' });
  assert.equal(a.queued, 0);
  r.release();
  assert.equal(a.inFlight, 0);
});

test('admission – an aborted waiter leaves the queue and never takes a slot', async () => {
  const a = new Admission(1, 1, 60_000);
  const r = await take(a);
  assert.ok(r.ok);
  const ac = new AbortController();
  const waiting = take(a, ac.signal);
  assert.equal(a.queued, 1);
  ac.abort();
  assert.deepEqual(await waiting, { ok: false, why: 'aborted' });
  assert.equal(a.queued, 0);
  r.release();
  assert.equal(a.inFlight, 0);
  assert.deepEqual(await take(a, ac.signal), { ok: false, why: 'aborted' });
});

test('admission – no queue means spill at once; a deadline shorter than the queue timeout caps the wait', async () => {
  const none = new Admission(1, 0, 1000);
  const r = await take(none);
  assert.ok(r.ok);
  assert.deepEqual(await take(none), { ok: false, why: 'queue_full' });
  r.release();
  const q = new Admission(1, 4, 60_000);
  const held = await take(q);
  assert.ok(held.ok);
  assert.deepEqual(await take(q, never, 0), { ok: false, why: 'queue_timeout' });
  assert.deepEqual(await take(q, never, 5), { ok: false, why: 'queue_timeout' });
  held.release();
});

test('admission – a request with n choices takes n slots, capped at the route size', async () => {
  const a = new Admission(4, 4, 60_000);
  const wide = await take(a, never, undefined);
  assert.ok(wide.ok);
  const three = a.acquire(never, undefined, 3);
  const threeResult = await three;
  assert.ok(threeResult.ok);
  assert.equal(a.inFlight, 4);
  // A 2-wide waiter queues; a later 1-wide one waits behind it (FIFO), even though one slot would fit it.
  const two = a.acquire(never, undefined, 2) as Promise<AcquireResult>;
  const one = a.acquire(never, undefined, 1) as Promise<AcquireResult>;
  assert.equal(a.queued, 2);
  wide.release();
  assert.equal(a.queued, 2, 'one free slot does not fit the 2-wide head');
  threeResult.release();
  const [g2, g1] = await Promise.all([two, one]);
  assert.ok(g2.ok && g1.ok);
  assert.equal(a.inFlight, 3);
  g2.release();
  g1.release();
  const huge = await a.acquire(never, undefined, 99);
  assert.ok(huge.ok);
  assert.equal(a.inFlight, 4, 'n beyond the route is capped at every slot');
  huge.release();
  assert.equal(a.inFlight, 0);
  assert.equal(a.queued, 0);
});
