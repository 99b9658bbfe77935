// Admission per route (SPEC §5 steps 8, 10, 11): at most `slots` in flight, a bounded FIFO
// queue with a timeout, spill along fallback.busy / busy_image, terminal and pinned requests
// that answer 503 instead of moving, and upstream busy signals (429, llama.cpp "Loading
// model", LM Studio's own overflow) that count as busy, never as broken. Every test checks
// what the upstream saw and that nothing is left in flight or queued.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { upstreamView } from '../../router/admin/routes.ts';
import { assertSettled, chat, coding, errorOf, hold, labFor, logLines, pinned, sdk, until, type ChatBody, requestFailures } from '../helpers/faults.ts';

// The sims get far more generation slots than their routes, so the sim's own peak counts
// what the router let through instead of being capped by the sim.
const WIDE = { slots: 64 };

test('S1: a full route with no queue spills to fallback.busy at once and never exceeds its slots', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { queue: 0 } }, sim: { 'ubuntu-6000': WIDE } });
  const hands = lab.sims['ubuntu-6000']!;
  const held = await hold(lab, 'ubuntu-6000', 4, coding());

  const { data, response } = await sdk(lab).chat.completions.create(coding()).withResponse();
  assert.equal(response.headers.get('x-homelab-route'), 'win-5090');
  assert.equal(response.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>win-5090');
  assert.equal(response.headers.get('x-homelab-reason'), 'ubuntu-6000_saturated');
  assert.equal(response.headers.get('x-homelab-bucket'), 'coding');
  assert.equal(data.model, 'gemma-4-31b');
  assert.equal(hands.received.length, 4, 'the spilled request was never sent to the full route');
  assert.equal(hands.peakInFlight(), 4);

  held.releaseAll();
  await hands.waitForAborts(4);
  await held.done;
  // Spilling is the router's own overflow, not a fault of the full route.
  const h = lab.svc.states.get('ubuntu-6000')!.health;
  assert.equal(h.consecutiveFailures, 0);
  assert.equal(h.healthy, true);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  await assertSettled(lab);
});

test('a spill whose busy fallback is full too walks on along its chain, and the header lists every route passed', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { queue: 0 }, 'win-5090': { queue: 0 } }, sim: { 'ubuntu-6000': WIDE, 'win-5090': WIDE } });
  const hands = await hold(lab, 'ubuntu-6000', 4, coding());
  const mouth = await hold(lab, 'win-5090', 3, pinned('homelab/chat'));

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>win-5090>spark');
  assert.equal(r.headers.get('x-homelab-reason'), 'win-5090_saturated');
  assert.equal(lab.sims['ubuntu-6000']!.received.length, 4);
  assert.equal(lab.sims['win-5090']!.received.length, 3);
  assert.equal(lab.sims['win-5090']!.peakInFlight(), 3);

  hands.releaseAll();
  mouth.releaseAll();
  await Promise.all([hands.done, mouth.done]);
  await assertSettled(lab);
});

test('S2: requests past the slots wait in a FIFO queue and are dispatched in arrival order as slots free', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { queue: 4, queue_timeout_ms: 60_000 } }, sim: { 'ubuntu-6000': WIDE } });
  const hands = lab.sims['ubuntu-6000']!;
  const admission = lab.svc.states.get('ubuntu-6000')!.admission;
  const held = await hold(lab, 'ubuntu-6000', 4, coding());

  const first = chat(lab, coding('Refactor the FIRST queued FastAPI handler'));
  await until('the first request to queue', () => admission.queued === 1);
  const second = chat(lab, coding('Refactor the SECOND queued FastAPI handler'));
  await until('the second request to queue', () => admission.queued === 2);
  assert.equal(hands.received.length, 4, 'queued requests are not sent upstream');
  assert.equal(admission.inFlight, 4);

  held.release(0);
  await hands.waitForRequests(5);
  assert.match(JSON.stringify(hands.received[4]!.body.messages), /FIRST/);
  const r1 = await first;
  assert.equal(r1.status, 200);
  assert.equal(r1.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.equal(r1.headers.get('x-homelab-fallback-path'), 'ubuntu-6000');

  held.release(1);
  await hands.waitForRequests(6);
  assert.match(JSON.stringify(hands.received[5]!.body.messages), /SECOND/);
  const r2 = await second;
  assert.equal(r2.status, 200);
  assert.equal(r2.headers.get('x-homelab-route'), 'ubuntu-6000');

  assert.ok(hands.peakInFlight() <= 4, `upstream saw ${hands.peakInFlight()} at once`);
  held.releaseAll();
  await held.done;
  await assertSettled(lab);
});

test('S1/S3: a full queue spills at once; a queue wait that times out spills too', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { queue: 1, queue_timeout_ms: 60_000 } }, sim: { 'ubuntu-6000': WIDE } });
  const hands = lab.sims['ubuntu-6000']!;
  const admission = lab.svc.states.get('ubuntu-6000')!.admission;
  const held = await hold(lab, 'ubuntu-6000', 4, coding());

  const waiting = chat(lab, coding('Refactor the queued FastAPI handler'));
  await until('one request to queue', () => admission.queued === 1);
  const overflow = await chat(lab, coding());
  assert.equal(overflow.status, 200);
  assert.equal(overflow.headers.get('x-homelab-route'), 'win-5090');
  assert.equal(overflow.headers.get('x-homelab-reason'), 'ubuntu-6000_saturated');
  assert.equal(admission.queued, 1, 'the queue never grows past its bound');

  held.release(0);
  assert.equal((await waiting).headers.get('x-homelab-route'), 'ubuntu-6000');
  held.releaseAll();
  await held.done;
  await assertSettled(lab);
  assert.equal(hands.received.length, 5);
});

test('S3: a queue wait that runs out spills along fallback.busy', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { queue: 4, queue_timeout_ms: 50 } }, sim: { 'ubuntu-6000': WIDE } });
  const held = await hold(lab, 'ubuntu-6000', 4, coding());

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'win-5090');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>win-5090');
  assert.equal(lab.sims['ubuntu-6000']!.received.length, 4);
  assert.equal(lab.svc.states.get('ubuntu-6000')!.admission.queued, 0, 'the timed-out waiter left the queue');

  held.releaseAll();
  await held.done;
  await assertSettled(lab);
});

test('an image request on a full vision route spills along busy_image, never to a blind route', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-4090': { queue: 0 } }, sim: { 'ubuntu-4090': WIDE } });
  const eyes = lab.sims['ubuntu-4090']!;
  const held = await hold(lab, 'ubuntu-4090', 8, pinned('homelab/vision'));

  const image = {
    model: 'homelab/auto',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is in this picture?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
  };
  const { response } = await sdk(lab).chat.completions.create(image as any).withResponse();
  assert.equal(response.headers.get('x-homelab-route'), 'spark');
  assert.equal(response.headers.get('x-homelab-fallback-path'), 'ubuntu-4090>spark');
  assert.equal(lab.sims['win-5090']!.received.length, 0, 'the blind busy fallback never sees an image');
  assert.equal(eyes.received.length, 8);
  assert.equal(eyes.peakInFlight(), 8);

  held.releaseAll();
  await held.done;
  await assertSettled(lab);
});

test('S3/S4/S15: the terminal route answers 503 upstream_saturated when slots and queue are full; overflow never counts against health', async (t) => {
  const lab = await labFor(t, { routeOverrides: { spark: { queue: 1, queue_timeout_ms: 60_000 } }, sim: { spark: WIDE } });
  const brain = lab.sims.spark!;
  const admission = lab.svc.states.get('spark')!.admission;
  const held = await hold(lab, 'spark', 4, pinned('homelab/reasoning'));

  // Auto traffic that lands on the terminal route (unknown bucket) behaves like a pin there.
  const unknown = { model: 'homelab/auto', messages: [{ role: 'user', content: 'zxqv plorm' }] };
  const waiting = chat(lab, unknown);
  await until('one request to queue on spark', () => admission.queued === 1);

  const r = await chat(lab, unknown);
  const e = errorOf(r);
  assert.equal(e.status, 503);
  assert.equal(e.code, 'upstream_saturated');
  assert.match(e.message, /busy/);
  assert.ok(Number(e.retryAfter) >= 1, `Retry-After: ${e.retryAfter}`);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'spark');
  assert.equal(r.headers.get('x-homelab-bucket'), 'unknown');
  assert.equal(brain.received.length, 4, 'an overflow 503 makes no upstream attempt');

  // Many overflows at once: all refused, the queue stays at its bound, spark stays healthy.
  const storm = await Promise.all(Array.from({ length: 20 }, () => chat(lab, pinned('homelab/reasoning'))));
  assert.deepEqual(new Set(storm.map((s) => `${s.status} ${s.json?.error?.code}`)), new Set(['503 upstream_saturated']));
  assert.equal(admission.queued, 1);
  assert.equal(brain.received.length, 4);
  const h = lab.svc.states.get('spark')!.health;
  assert.equal(h.healthy, true);
  assert.equal(h.consecutiveFailures, 0);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  for (const other of ['ubuntu-4090', 'ubuntu-6000', 'win-5090']) assert.equal(lab.sims[other]!.received.length, 0, `${other} got traffic from a terminal route`);

  held.release(0);
  const served = await waiting;
  assert.equal(served.status, 200);
  assert.equal(served.headers.get('x-homelab-route'), 'spark');
  held.releaseAll();
  await held.done;
  await assertSettled(lab);
  assert.ok(brain.peakInFlight() <= 4);
});

test('S15: a queue timeout on the terminal route is a 503 with Retry-After, never a downgrade', async (t) => {
  const lab = await labFor(t, { routeOverrides: { spark: { queue: 4, queue_timeout_ms: 50 } }, sim: { spark: WIDE } });
  const held = await hold(lab, 'spark', 4, pinned('homelab/reasoning'));

  const err = await sdk(lab)
    .chat.completions.create(pinned('homelab/review'))
    .then(() => null, (e: unknown) => e);
  assert.ok(err instanceof OpenAI.APIError, String(err));
  assert.equal(err.status, 503);
  assert.equal(err.code, 'upstream_saturated');
  assert.ok(Number(err.headers?.get('retry-after')) >= 1);
  for (const other of ['ubuntu-4090', 'ubuntu-6000', 'win-5090']) assert.equal(lab.sims[other]!.received.length, 0);

  held.releaseAll();
  await held.done;
  await assertSettled(lab);
});

test('a pinned request queues within bounds, then 503; it never changes model', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { queue: 1, queue_timeout_ms: 50 } }, sim: { 'ubuntu-6000': WIDE } });
  const held = await hold(lab, 'ubuntu-6000', 4, coding());

  const pins: Array<[string, ChatBody, Record<string, string>]> = [
    ['alias', pinned('homelab/code'), {}],
    ['served model name', pinned('glm-4.5-air-awq'), {}],
    ['x-homelab-route header', coding(), { 'x-homelab-route': 'ubuntu-6000' }],
  ];
  for (const [how, body, headers] of pins) {
    const r = await chat(lab, body, headers);
    assert.equal(r.status, 503, how);
    assert.equal(r.json.error.code, 'upstream_saturated', how);
    assert.ok(Number(r.headers.get('retry-after')) >= 1, how);
    assert.equal(r.headers.get('x-homelab-route'), 'ubuntu-6000', how);
    assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000', how);
  }
  for (const other of ['ubuntu-4090', 'spark', 'win-5090']) assert.equal(lab.sims[other]!.received.length, 0, `${other} served a pinned request`);
  assert.equal(lab.sims['ubuntu-6000']!.received.length, 4);

  held.releaseAll();
  await held.done;
  await assertSettled(lab);
  // With the slots free again the pin is served where it asked to go.
  const ok = await chat(lab, pinned('homelab/code'));
  assert.equal(ok.status, 200);
  assert.equal(ok.json.model, 'glm-4.5-air-awq');
  await assertSettled(lab);
});

test('S14: an upstream 429 counts as busy: spill along fallback.busy, skip the route for Retry-After, health untouched', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  hands.pushFault({ kind: 'status', status: 429, headers: { 'retry-after': '30' } });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'win-5090');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>win-5090');
  assert.equal(r.headers.get('x-homelab-reason'), 'ubuntu-6000_saturated');
  assert.equal(lab.sims.spark!.received.length, 0, 'busy goes to fallback.busy, not fallback.outage');

  // Inside the Retry-After window the route is passed over without being called.
  const again = await chat(lab, coding());
  assert.equal(again.headers.get('x-homelab-route'), 'win-5090');
  assert.equal(hands.received.length, 1);

  const h = lab.svc.states.get('ubuntu-6000')!.health;
  assert.equal(h.healthy, true);
  assert.equal(h.consecutiveFailures, 0);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  await assertSettled(lab);
});

test('S14: a 429 on a pinned or terminal route becomes 503 upstream_saturated with the upstream Retry-After', async (t) => {
  const lab = await labFor(t);
  lab.sims.spark!.pushFault({ kind: 'status', status: 429, headers: { 'retry-after': '7' } });
  const r = await chat(lab, pinned('homelab/reasoning'));
  assert.deepEqual(errorOf(r), { ...errorOf(r), status: 503, code: 'upstream_saturated', retryAfter: '7' });
  // The window holds: the next request is refused without calling spark again.
  const r2 = await chat(lab, pinned('homelab/reasoning'));
  assert.equal(r2.status, 503);
  assert.equal(r2.json.error.code, 'upstream_saturated');
  assert.equal(lab.sims.spark!.received.length, 1);
  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 0);

  lab.sims['ubuntu-6000']!.pushFault({ kind: 'status', status: 429 });
  const p = await chat(lab, pinned('homelab/code'));
  assert.equal(p.status, 503);
  assert.equal(p.json.error.code, 'upstream_saturated');
  assert.equal(p.headers.get('x-homelab-fallback-path'), 'ubuntu-6000');
  assert.equal(lab.sims['win-5090']!.received.length, 0);
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.consecutiveFailures, 0);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  await assertSettled(lab);
});

test('S24: llama.cpp 503 "Loading model" is busy, not a failure', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { runtime: 'llamacpp' } }, sim: { 'ubuntu-6000': { runtime: 'llamacpp' } } });
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'loading' });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'win-5090');
  assert.equal(r.headers.get('x-homelab-reason'), 'ubuntu-6000_saturated');
  const h = lab.svc.states.get('ubuntu-6000')!.health;
  assert.equal(h.healthy, true);
  assert.equal(h.consecutiveFailures, 0);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  await assertSettled(lab);
});

test('S24: a llama.cpp /health answering 503 "Loading model" skips the route until the next probe without marking it down', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { runtime: 'llamacpp' } }, sim: { 'ubuntu-6000': { runtime: 'llamacpp' } } });
  const llama = lab.sims['ubuntu-6000']!;
  const health = lab.svc.states.get('ubuntu-6000')!.health;
  llama.setHealth('loading');
  for (let i = 0; i < 3; i++) await lab.svc.health.probeAll(); // past unhealthy_after
  assert.equal(health.healthy, true);
  assert.equal(health.consecutiveFailures, 0);
  assert.ok(health.busyUntil > Date.now(), 'skipped until the next probe');
  assert.ok(!Number.isNaN(Date.parse(upstreamView(lab.svc.states.get('ubuntu-6000')!).busy_until ?? '')), 'the admin view says until when');

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'win-5090');
  assert.equal(r.headers.get('x-homelab-reason'), 'ubuntu-6000_saturated');
  assert.equal(llama.received.length, 0, 'a loading route is not called');
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  await assertSettled(lab);
});

test('an engine that rejects past its own slots (LM Studio 429) spills to spark without being marked down', async (t) => {
  // The route admits 3 but the machine only runs 1: its 429 must read as busy.
  const lab = await labFor(t, { sim: { 'win-5090': { slots: 1, overflow: 'reject' } } });
  const mouth = lab.sims['win-5090']!;
  const held = await hold(lab, 'win-5090', 1, pinned('homelab/chat'));

  const { data, response } = await sdk(lab)
    .chat.completions.create({ model: 'homelab/auto', messages: [{ role: 'user', content: 'tell me a joke about cats' }] })
    .withResponse();
  assert.equal(response.headers.get('x-homelab-bucket'), 'general_chat');
  assert.equal(response.headers.get('x-homelab-route'), 'spark');
  assert.equal(response.headers.get('x-homelab-fallback-path'), 'win-5090>spark');
  assert.equal(response.headers.get('x-homelab-reason'), 'win-5090_saturated');
  assert.equal(data.model, 'qwen3.6-35b-a3b-fp8');
  assert.equal(mouth.received.length, 2);
  assert.equal(lab.svc.states.get('win-5090')!.health.consecutiveFailures, 0);

  held.releaseAll();
  await mouth.waitForAborts(1);
  await held.done;
  await assertSettled(lab);
});
