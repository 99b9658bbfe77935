// Upstreams that misbehave on purpose (issue: keep the core promises under hostile upstreams
// and reloads): a Retry-After far in the future, an error body without end, a probe answer
// without end, a stream cut in the middle of an event, a redirect, and a reload while
// requests run. Each against real simulated upstreams on loopback, asserting what the
// upstream saw and that nothing is left in flight or queued.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import OpenAI from 'openai';
import { upstreamView } from '../../router/admin/routes.ts';
import { probeRoute } from '../../router/upstream/probe.ts';
import { assertSettled, chat, coding, errorOf, hold, labFor, logLines, pinned, readToEnd, requestFailures, sdk, send, sseEvents } from '../helpers/faults.ts';
import { postJson } from '../helpers/lab.ts';

const TOKEN = 'hostile-upstreams-token-3c1d';

test('a 429 with Retry-After: 1000000000 skips the route for at most health.max_busy_s, and a passing probe ends it', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  const rt = lab.svc.states.get('ubuntu-6000')!;
  hands.pushFault({ kind: 'status', status: 429, headers: { 'retry-after': '1000000000' } });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'win-5090');
  const maxBusyMs = lab.svc.policy.doc.health.max_busy_s * 1000;
  assert.equal(maxBusyMs, 60_000, 'the default');
  assert.ok(rt.health.busyUntil > Date.now(), 'the route is skipped for a while');
  assert.ok(rt.health.busyUntil - Date.now() <= maxBusyMs, `believed for at most max_busy_s, not until ${new Date(rt.health.busyUntil).toISOString()}`);

  // The engine answers its probe: the busy window ends there, long before its own Retry-After.
  await lab.svc.health.probeAll();
  assert.equal(upstreamView(rt).busy_until, null);
  const back = await chat(lab, coding());
  assert.equal(back.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.equal(hands.received.length, 2);
  await assertSettled(lab);
});

test('a 429 with a Retry-After date in 2099 on the terminal route: clients get the router\'s own estimate, 1 to 60 s', async (t) => {
  const lab = await labFor(t);
  const brain = lab.sims.spark!;
  brain.pushFault({ kind: 'status', status: 429, headers: { 'retry-after': 'Thu, 01 Jan 2099 00:00:00 GMT' } });

  for (let i = 0; i < 2; i++) {
    const e = errorOf(await chat(lab, pinned('homelab/reasoning')));
    assert.equal(e.status, 503);
    assert.equal(e.code, 'upstream_saturated');
    const s = Number(e.retryAfter);
    assert.ok(Number.isInteger(s) && s >= 1 && s <= 60, `Retry-After: ${e.retryAfter}`);
  }
  assert.equal(brain.received.length, 1, 'the busy window holds between probes');
  assert.ok(lab.svc.states.get('spark')!.health.busyUntil - Date.now() <= 60_000);
  await assertSettled(lab);
});

test('reload under load: a route whose settings change keeps counting its running requests, so the upstream never sees more than slots', async (t) => {
  const lab = await labFor(t, { adminToken: TOKEN, policyFile: true, routeOverrides: { 'ubuntu-6000': { slots: 2, queue: 0 } } });
  const hands = lab.sims['ubuntu-6000']!;
  // One upstream-caused failure first, so there is health state to carry over.
  hands.pushFault({ kind: 'status', status: 500 });
  assert.equal((await chat(lab, coding())).headers.get('x-homelab-route'), 'spark');
  const before = lab.svc.states.get('ubuntu-6000')!;
  assert.equal(before.health.consecutiveFailures, 1);
  hands.resetStats();

  const held = await hold(lab, 'ubuntu-6000', 2, coding());
  assert.equal(before.admission.inFlight, 2);

  const doc = loadYaml(lab.policyYaml) as any;
  doc.routes['ubuntu-6000'].timeout_ms = 45_000;
  writeFileSync(lab.policyPath!, dumpYaml(doc));
  const reload = await postJson(`${lab.base}/admin/reload-config`, '', { authorization: `Bearer ${TOKEN}` });
  assert.equal(reload.status, 200, reload.text);
  assert.deepEqual(reload.json.changed, ['routes.ubuntu-6000']);

  const after = lab.svc.states.get('ubuntu-6000')!;
  assert.notEqual(after, before, 'a new runtime for the new settings');
  assert.equal(after.config.timeout_ms, 45_000);
  assert.equal(after.admission.inFlight, 2, 'the requests admitted before the reload still count');
  assert.equal(after.health.consecutiveFailures, 1, 'health carries over');
  const view = await (await fetch(`${lab.base}/admin/upstreams`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as any;
  assert.equal(view.upstreams.find((u: any) => u.route === 'ubuntu-6000').in_flight, 2);

  // Both slots are taken: new coding traffic spills instead of reaching the GPU.
  for (let i = 0; i < 2; i++) {
    const r = await chat(lab, coding());
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-homelab-route'), 'win-5090');
  }
  assert.equal(hands.received.length, 2);
  assert.ok(hands.peakInFlight() <= 2, `the upstream saw ${hands.peakInFlight()} at once with slots: 2`);

  held.releaseAll();
  await hands.waitForAborts(2);
  await held.done;
  await assertSettled(lab);
  // Freed slots are usable again on the new settings.
  assert.equal((await chat(lab, coding())).headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.ok(hands.peakInFlight() <= 2);
  await assertSettled(lab);
});

test('an endless 5xx body is read only to its cap: the request fails over, the CUDA error in its first bytes is seen', async (t) => {
  // A short deadline bounds this test however the router reads the body.
  const lab = await labFor(t, { edit: (doc) => (doc.server.request_timeout_ms = 5000), routeOverrides: Object.fromEntries(['ubuntu-4090', 'ubuntu-6000', 'win-5090', 'spark'].map((r) => [r, { timeout_ms: 3000 }])) });
  const hands = lab.sims['ubuntu-6000']!;
  const cuda: string[] = [];
  lab.svc.onCudaFault((route) => cuda.push(route));
  hands.pushFault({ kind: 'endless', status: 500, head: '{"error":{"message":"CUDA error: an illegal memory access was encountered","padding":"' });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  await hands.waitForAborts(1); // the router closed the endless body
  assert.deepEqual(cuda, ['ubuntu-6000']);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind, f.cuda]), [['ubuntu-6000', 'status_5xx', true]]);
  assert.match(failures[0].detail, /longer than 65536 bytes/);
  await assertSettled(lab);
});

test('a 5xx body that trickles is read for at most the route\'s timeout_ms, then the request fails over', async (t) => {
  const lab = await labFor(t, { edit: (doc) => (doc.server.request_timeout_ms = 5000), routeOverrides: { 'ubuntu-4090': { timeout_ms: 3000 }, 'ubuntu-6000': { timeout_ms: 400 }, 'win-5090': { timeout_ms: 3000 }, spark: { timeout_ms: 3000 } } });
  const hands = lab.sims['ubuntu-6000']!;
  hands.pushFault({ kind: 'endless', status: 502, head: '<html><body>Bad Gateway', contentType: 'text/html', trickleMs: 25 });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  await hands.waitForAborts(1);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind]), [['ubuntu-6000', 'status_5xx']]);
  assert.match(failures[0].detail, /not finished within \d+ ms/);
  await assertSettled(lab);
});

test('a health probe reads at most a few KB of an endless answer and closes it', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  hands.setHealth('endless');
  const result = await probeRoute(lab.svc.policy.route('ubuntu-6000'), 2000);
  assert.equal(result.ok, true, result.error);
  await hands.waitForAborts(1);
  // And through the health checker: the route stays healthy, nothing is left open.
  await lab.svc.health.probeAll();
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.healthy, true);
  await hands.waitForAborts(2);
  await assertSettled(lab);
});

test('an upstream dying in the middle of an SSE event: the half event is dropped and the error event reaches the client\'s parser', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'die_mid_event', chunks: 3 });
  const res = await send(lab, coding(undefined, { stream: true }));
  assert.equal(res.status, 200);
  const { text } = await readToEnd(res);
  const events = sseEvents(text);
  const last = events.at(-1)!;
  assert.equal(last.event, 'error', `the stream ends with an error event: ${JSON.stringify(text.slice(-300))}`);
  assert.match(JSON.parse(last.data).error.message, /failed mid-stream/);
  for (const e of events.slice(0, -1)) assert.doesNotThrow(() => JSON.parse(e.data), `a relayed event is whole: ${e.data}`);
  assert.equal(events.length, 4, 'three whole events, then the error');
  assert.ok(!text.includes('[DONE]'));

  // The official SDK sees the router's error, not a JSON parse failure.
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'die_mid_event', chunks: 2 });
  const stream = await sdk(lab).chat.completions.create({ ...coding(), stream: true });
  const err = await (async () => {
    for await (const _chunk of stream) {
      /* read to the end */
    }
  })().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof OpenAI.APIError, String(err));
  assert.match((err as Error).message, /failed mid-stream/);
  await assertSettled(lab);
});

test('an upstream 3xx is never relayed or followed: it is an outage of that route', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  const elsewhere = lab.sims['win-5090']!;
  // Points at another machine, as a misconfigured proxy in front of an engine might.
  hands.pushFault({ kind: 'status', status: 307, headers: { location: `${elsewhere.url}/chat/completions` }, body: '' });

  // fetch follows redirects by default: a relayed 307 would re-post the prompt to win-5090.
  const r = await chat(lab, coding());
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-reason'), 'ubuntu-6000_outage');
  assert.equal(elsewhere.received.length, 0, 'the prompt went nowhere the policy did not name');
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind]), [['ubuntu-6000', 'redirect']]);
  assert.match(failures[0].detail, /HTTP 307 redirect to .*not followed/);
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.consecutiveFailures, 1);
  await assertSettled(lab);
});

test('a route out of service: Retry-After is when the router expects it back, not a fixed interval', async (t) => {
  const lab = await labFor(t);
  lab.sims.spark!.pushFault({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
  for (let i = 0; i < 2; i++) assert.equal((await chat(lab, pinned('homelab/reasoning'))).status, 503);
  const rt = lab.svc.states.get('spark')!;
  assert.equal(rt.health.healthy, false);
  const e = errorOf(await chat(lab, pinned('homelab/reasoning')));
  assert.equal(e.status, 503);
  assert.equal(e.code, 'upstream_unavailable');
  // Ejected for ejection_base_s (30 s by default): that is the estimate, give or take the second under way.
  assert.ok(Number(e.retryAfter) > 15 && Number(e.retryAfter) <= 30, `Retry-After: ${e.retryAfter}`);
  await assertSettled(lab);
});
