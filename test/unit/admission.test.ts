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
