// The pure parts of route health: ejection back-off and its cap, the busy cap, which probe
// ends what, the slow-start ramp and resizing of admission, the SSE event boundary.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventBoundary } from '../../router/proxy/relay.ts';
import { Admission } from '../../router/upstream/admission.ts';
import { mayEject } from '../../router/upstream/ejection-cap.ts';
import { applyBusy, applyFailure, applyProbe, condition, freshHealth, nextEjection, type HealthRules } from '../../router/upstream/route-health.ts';
import { clampSeconds } from '../../router/decide/retry-estimate.ts';
import { RouteStates } from '../../router/upstream/route-state.ts';
import { labPolicy } from '../helpers/policies.ts';

const RULES: HealthRules = { unhealthyAfter: 2, healthyAfter: 1, intervalMs: 15_000, maxBusyMs: 60_000, ejectionBaseMs: 30_000, ejectionMaxMs: 300_000 };
const T0 = 1_700_000_000_000;
const pass = (at: number) => ({ ok: true, busy: false, loading: false, cuda: false, latencyMs: 1, at });

test('ejection lasts base × n, capped at the max; the count starts over after max in service', () => {
  const h = freshHealth();
  assert.deepEqual(nextEjection(h, RULES, T0), { n: 1, ms: 30_000 });
  h.ejections = 3;
  h.lastEjectionEndAt = T0 - 1000;
  assert.deepEqual(nextEjection(h, RULES, T0), { n: 4, ms: 120_000 });
  h.ejections = 20;
  assert.deepEqual(nextEjection(h, RULES, T0), { n: 21, ms: 300_000 });
  h.lastEjectionEndAt = T0 - 300_000;
  assert.deepEqual(nextEjection(h, RULES, T0), { n: 1, ms: 30_000 });
});

test('unhealthy_after request failures eject, unless the chain cap says no', () => {
  const h = freshHealth();
  assert.equal(applyFailure(h, 'HTTP 500', RULES, T0, () => true), 'counted');
  assert.equal(applyFailure(h, 'HTTP 500', RULES, T0, () => false), 'ejection_capped');
  assert.equal(h.healthy, true);
  assert.equal(applyFailure(h, 'HTTP 500', RULES, T0, () => true), 'ejected');
  assert.equal(h.healthy, false);
  assert.equal(h.ejectedUntil, T0 + 30_000);
  assert.equal(condition(h, T0), 'down');
  assert.equal(condition(h, T0 + 30_000), 'healthy');
});

test('a passing probe ends the first ejection of a run, not a repeated one (S27)', () => {
  const h = freshHealth();
  applyFailure(h, 'x', RULES, T0, () => true);
  applyFailure(h, 'x', RULES, T0, () => true);
  applyProbe(h, pass(T0 + 1), RULES);
  assert.equal(h.healthy, true);
  applyFailure(h, 'x', RULES, T0 + 2, () => true);
  applyFailure(h, 'x', RULES, T0 + 2, () => true);
  assert.equal(h.ejections, 2);
  assert.equal(h.ejectedUntil, T0 + 2 + 60_000);
  applyProbe(h, pass(T0 + 3), RULES);
  assert.equal(h.healthy, false);
});

test('an upstream busy window is believed for at most max_busy_s and a passing probe ends it', () => {
  const h = freshHealth();
  applyBusy(h, 1_000_000_000_000, RULES, T0);
  assert.equal(h.busyUntil, T0 + 60_000);
  assert.equal(condition(h, T0), 'busy');
  applyProbe(h, pass(T0 + 5), RULES);
  assert.equal(h.busyUntil, 0);
  assert.equal(condition(h, T0 + 5), 'healthy');
  assert.equal(clampSeconds(1e9), 60);
  assert.equal(clampSeconds(0.2), 1);
  assert.equal(clampSeconds(Number.POSITIVE_INFINITY), 60);
});

test('the chain cap: of a chain\'s non-terminal routes at most max_ejected_percent (at least one) are out; terminal routes are not counted', () => {
  // hands > mouth > brain(terminal) as the outage chain.
  const policy = labPolicy((doc) => (doc.routes.hands.fallback.outage = 'mouth'));
  const none = () => false;
  assert.equal(mayEject(policy, 'hands', none, 50), true);
  assert.equal(mayEject(policy, 'mouth', (r) => r === 'hands', 50), false);
  assert.equal(mayEject(policy, 'mouth', (r) => r === 'hands', 100), true);
  assert.equal(mayEject(policy, 'brain', () => true, 50), true);
  assert.equal(mayEject(policy, 'eyes', (r) => r === 'hands', 50), true, 'another chain');
});

test('admission: a shrinking reload admits nobody until running requests fit; slow start ramps from one', async () => {
  const a = new Admission(2, 0, 1000);
  const r1 = a.tryAcquire()!;
  const r2 = a.tryAcquire()!;
  a.resize(1, 0, 1000);
  assert.equal(a.tryAcquire(), null);
  r1();
  assert.equal(a.tryAcquire(), null, 'one still running fills the new single slot');
  r2();
  const r3 = a.tryAcquire();
  assert.ok(r3);
  r3();

  const b = new Admission(4, 4, 5000);
  b.rampUp(60_000);
  assert.equal(b.limit, 1);
  const first = b.tryAcquire()!;
  assert.equal(b.tryAcquire(), null);
  // A waiter is granted once the ramp is ended (or rises).
  const waiting = b.acquire(new AbortController().signal);
  b.rampUp(0);
  const got = await waiting;
  assert.equal(got.ok, true);
  assert.equal(b.limit, 4);
  first();
  if (got.ok) got.release();
  assert.equal(b.inFlight, 0);
  b.dispose();
});

test('SSE event boundary: after the last blank line, LF or CRLF', () => {
  assert.equal(eventBoundary(Buffer.from('data: a\n\n')), 9);
  assert.equal(eventBoundary(Buffer.from('data: a\n\ndata: {"b')), 9);
  assert.equal(eventBoundary(Buffer.from('data: a\r\n\r\ndata: b')), 11);
  assert.equal(eventBoundary(Buffer.from('data: {"half')), 0);
  assert.equal(eventBoundary(Buffer.from('data: a\r\n\r\n')), 11);
});

test('a route removed by a reload while its requests run, then brought back, keeps counting them', async () => {
  const full = labPolicy();
  const without = labPolicy((doc) => {
    delete doc.routes.mouth;
    doc.routes.eyes.fallback.busy = 'brain';
    doc.routes.hands.fallback.busy = 'brain';
    doc.buckets.notification.route = 'brain';
    doc.buckets.chat.route = 'brain';
  });
  const states = new RouteStates(full);
  try {
    const a = states.get('mouth')!.admission.tryAcquire()!;
    const b = states.get('mouth')!.admission.tryAcquire()!;
    states.sync(without);
    assert.equal(states.get('mouth'), undefined);
    states.sync(full);
    const back = states.get('mouth')!;
    assert.equal(back.admission.inFlight, 2);
    assert.equal(back.admission.tryAcquire(), null, 'slots: 2, both still taken');
    a();
    b();
    assert.equal(back.admission.inFlight, 0);
  } finally {
    await states.close();
  }
});
