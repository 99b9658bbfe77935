// Failover before the first byte (SPEC §5 step 9) and route health (step 12): refused,
// reset, no headers within timeout_ms and 5xx move along fallback.outage; 4xx pass through
// unchanged and untried elsewhere; one deadline covers every attempt; only upstream-caused
// failures count against health; probes mark routes down and bring them back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { assertSettled, chat, coding, errorOf, labFor, logLines, pinned, sdk, requestFailures } from '../helpers/faults.ts';

test('S11: a refused connection fails over along fallback.outage; the failure is counted and logged', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  await hands.stop();

  const { data, response } = await sdk(lab).chat.completions.create(coding()).withResponse();
  assert.equal(data.model, 'qwen3.6-35b-a3b-fp8');
  assert.equal(response.headers.get('x-homelab-route'), 'spark');
  assert.equal(response.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  assert.equal(response.headers.get('x-homelab-reason'), 'ubuntu-6000_outage');
  assert.equal(lab.sims['win-5090']!.received.length, 0, 'an outage follows fallback.outage, not fallback.busy');

  const h = lab.svc.states.get('ubuntu-6000')!.health;
  assert.equal(h.consecutiveFailures, 1);
  assert.equal(h.healthy, true, 'one failure is below unhealthy_after');
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.equal(failures.length, 1);
  assert.equal(failures[0].route, 'ubuntu-6000');
  assert.equal(failures[0].kind, 'refused');
  assert.equal(failures[0].phase, 'before_first_byte');
  assert.equal(failures[0].request_id, response.headers.get('x-request-id'));

  // Back up: served where it belongs, and a success clears the count.
  await hands.restart();
  const back = await chat(lab, coding());
  assert.equal(back.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.equal(h.consecutiveFailures, 0);
  await assertSettled(lab);
});

test('a 503 names the route and what failed, never the upstream\'s body text or the GPU\'s address', async (t) => {
  const lab = await labFor(t);
  const spark = lab.sims.spark!;
  const echo = 'ECHOED-PROMPT-TEXT from the failing engine';
  spark.pushFault({ kind: 'status', status: 500, body: { error: { message: `${echo}: CUDA error: an illegal memory access` } } });
  const fivexx = errorOf(await chat(lab, pinned('homelab/reasoning')));
  assert.equal(fivexx.status, 503);
  assert.match(fivexx.message, /^Route spark is unavailable \(spark: HTTP 500 \(CUDA error\)\)\. Retry later\.$/);
  assert.doesNotMatch(fivexx.message, /ECHOED|illegal/);

  await spark.stop();
  const refused = errorOf(await chat(lab, pinned('homelab/reasoning')));
  assert.equal(refused.status, 503);
  assert.match(refused.message, /spark: ECONNREFUSED\)/);
  assert.doesNotMatch(refused.message, /127\.0\.0\.1|:\d{2,5}\b/, 'no address or port');

  // The operator still has the whole of both in upstream-failures.jsonl.
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.match(JSON.stringify(failures), /127\.0\.0\.1:\d+/);
  await spark.restart();
  await assertSettled(lab);
});

test('a connection reset after the request was sent fails over', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'refuse' });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  assert.equal(lab.sims['ubuntu-6000']!.received.length, 1);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind]), [['ubuntu-6000', 'reset']]);
  await assertSettled(lab);
});

test('S19: an upstream that never sends headers is abandoned after timeout_ms and the request fails over', async (t) => {
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { timeout_ms: 150 } } });
  const hands = lab.sims['ubuntu-6000']!;
  hands.pushFault({ kind: 'hang' });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  // The router closed the hung request instead of leaving it to generate for nobody.
  await hands.waitForAborts(1);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind]), [['ubuntu-6000', 'timeout']]);
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.consecutiveFailures, 1);
  await assertSettled(lab);
});

test('S12/S21/S34: 5xx and an HTML 502 before any byte fail over; unhealthy_after failures mark the route down and it is skipped at once; a probe brings it back', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  const state = lab.svc.states.get('ubuntu-6000')!;
  hands.pushFault({ kind: 'status', status: 500 }, { kind: 'html', status: 502 });

  const first = await chat(lab, coding());
  assert.equal(first.headers.get('x-homelab-route'), 'spark');
  assert.equal(state.health.healthy, true);
  const second = await chat(lab, coding());
  assert.equal(second.headers.get('x-homelab-route'), 'spark');
  assert.equal(second.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  assert.equal(state.health.consecutiveFailures, 2);
  assert.equal(state.health.healthy, false, 'unhealthy_after: 2');
  assert.match(state.health.lastError ?? '', /HTTP 502/);

  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind]), [['ubuntu-6000', 'status_5xx'], ['ubuntu-6000', 'status_5xx']]);
  assert.match(failures[1].detail, /HTTP 502/);
  assert.equal(failures[1].healthy, false);

  // Unhealthy: passed over without being called.
  const third = await chat(lab, coding());
  assert.equal(third.status, 200);
  assert.equal(third.headers.get('x-homelab-route'), 'spark');
  assert.equal(third.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  assert.equal(third.headers.get('x-homelab-reason'), 'ubuntu-6000_unhealthy');
  assert.equal(hands.received.length, 2);

  // The engine answers its health path again: one probe round restores it (healthy_after: 1).
  await lab.svc.health.probeAll();
  assert.equal(state.health.healthy, true);
  assert.ok(state.health.lastProbeAt !== null);
  const fourth = await chat(lab, coding());
  assert.equal(fourth.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.equal(hands.received.length, 3);
  await assertSettled(lab);
});

test('S34: a non-JSON error page on the terminal route becomes an OpenAI-shaped 503 naming the cause', async (t) => {
  const lab = await labFor(t);
  lab.sims.spark!.pushFault({ kind: 'html', status: 502 });

  const r = await chat(lab, pinned('homelab/reasoning'));
  const e = errorOf(r);
  assert.equal(e.status, 503);
  assert.equal(e.code, 'upstream_unavailable');
  assert.match(e.message, /spark/);
  assert.match(e.message, /HTTP 502/);
  assert.doesNotMatch(e.message, /[<>]/, 'the error page itself stays in the failure log');
  assert.ok(Number(e.retryAfter) >= 1);
  assert.equal(r.json.error.type, 'server_error');
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'spark');
  for (const other of ['ubuntu-4090', 'ubuntu-6000', 'win-5090']) assert.equal(lab.sims[other]!.received.length, 0);
  await assertSettled(lab);
});

test('S13/S23: an upstream 4xx (vLLM context-length 400) passes through unchanged, is not retried and is not counted', async (t) => {
  const lab = await labFor(t);
  const vllm400 = {
    object: 'error',
    message: "This model's maximum context length is 131072 tokens. However, you requested 140000 tokens (8000 in the messages, 132000 in the completion). Please reduce the length of the messages or completion.",
    type: 'BadRequestError',
    param: null,
    code: 400,
  };
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'status', status: 400, body: vllm400 });

  const r = await chat(lab, coding());
  assert.equal(r.status, 400);
  assert.equal(r.text, JSON.stringify(vllm400), 'the body is relayed byte for byte');
  assert.equal(r.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000');
  for (const other of ['spark', 'win-5090']) assert.equal(lab.sims[other]!.received.length, 0, `a 4xx was retried on ${other}`);

  // Other 4xx too, headers included; the SDK sees the upstream's own error.
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'status', status: 422, headers: { 'x-upstream-note': 'kept' } });
  const err = await sdk(lab)
    .chat.completions.create(coding())
    .then(() => null, (e: unknown) => e);
  assert.ok(err instanceof OpenAI.UnprocessableEntityError, String(err));
  assert.equal(err.headers?.get('x-upstream-note'), 'kept');
  assert.match(err.message, /simulated 422/);

  const h = lab.svc.states.get('ubuntu-6000')!.health;
  assert.equal(h.consecutiveFailures, 0);
  assert.equal(h.healthy, true);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  await assertSettled(lab);
});

test('S16: one deadline covers every attempt; the router\'s own deadline is not blamed on the upstream', async (t) => {
  // ubuntu-6000 gives up on its own timeout_ms well inside the deadline; spark's wait is then
  // cut short by what is left of it.
  const lab = await labFor(t, {
    edit: (doc) => {
      doc.server.request_timeout_ms = 2000;
      for (const r of Object.values<any>(doc.routes)) r.timeout_ms = 1500;
      doc.routes['ubuntu-6000'].timeout_ms = 300;
    },
  });
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'hang' });
  lab.sims.spark!.pushFault({ kind: 'hang' });

  const r = await chat(lab, coding());
  const e = errorOf(r);
  assert.equal(e.status, 503);
  assert.equal(e.code, 'upstream_unavailable');
  assert.ok(Number(e.retryAfter) >= 1);
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  // Both hung attempts were closed, not left running.
  await lab.sims['ubuntu-6000']!.waitForAborts(1);
  await lab.sims.spark!.waitForAborts(1);
  assert.equal(lab.sims['win-5090']!.received.length, 0);

  // ubuntu-6000 used its whole timeout_ms: its fault. spark was cut short by the deadline: not its fault.
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.consecutiveFailures, 1);
  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 0);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => f.route), ['ubuntu-6000']);
  await assertSettled(lab);
});

test('a CUDA error before the first byte fails over, is logged as CUDA and reaches the recovery hook', async (t) => {
  const lab = await labFor(t);
  const cuda: string[] = [];
  lab.svc.onCudaFault((route) => cuda.push(route));
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'cuda' });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.deepEqual(cuda, ['ubuntu-6000']);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.equal(failures.length, 1);
  assert.equal(failures[0].cuda, true);
  assert.match(failures[0].detail, /CUDA error/);
  const metrics = await (await fetch(`${lab.base}/metrics`)).text();
  assert.match(metrics, /homelab_router_upstream_failures_total\{route="ubuntu-6000",kind="cuda"\} 1/);
  await assertSettled(lab);
});

test('a non-stream body cut off mid-way fails over: nothing had reached the client', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'die_after', chunks: 1 });

  const r = await chat(lab, coding());
  assert.equal(r.status, 200);
  assert.equal(r.json.model, 'qwen3.6-35b-a3b-fp8');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind]), [['ubuntu-6000', 'reset']]);
  await assertSettled(lab);
});

test('S21: active probes mark a route down after unhealthy_after failures and back up when they pass', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  const state = lab.svc.states.get('ubuntu-6000')!;

  hands.setHealth('down');
  await lab.svc.health.probeAll();
  assert.equal(state.health.healthy, true, 'one failed probe is below unhealthy_after');
  await lab.svc.health.probeAll();
  assert.equal(state.health.healthy, false);
  assert.match(state.health.lastError ?? '', /503/);

  const skipped = await chat(lab, coding());
  assert.equal(skipped.headers.get('x-homelab-route'), 'spark');
  assert.equal(skipped.headers.get('x-homelab-reason'), 'ubuntu-6000_unhealthy');
  assert.equal(hands.received.length, 0, 'an unhealthy route is not called');
  const explain: any = await (await fetch(`${lab.url}/route/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(coding()) })).json();
  assert.equal(explain.route, 'spark');

  // A refused probe (machine off) keeps it down; a passing one restores it.
  await hands.stop();
  await lab.svc.health.probeAll();
  assert.equal(state.health.healthy, false);
  await hands.restart();
  hands.setHealth(null);
  await lab.svc.health.probeAll();
  assert.equal(state.health.healthy, true);
  assert.equal(state.health.consecutiveFailures, 0);
  const back = await chat(lab, coding());
  assert.equal(back.headers.get('x-homelab-route'), 'ubuntu-6000');
  await assertSettled(lab);
});

test('S22: the single terminal route failing gives fast 503s while down and recovers without an operator', async (t) => {
  const lab = await labFor(t);
  const brain = lab.sims.spark!;
  brain.pushFault({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });

  for (let i = 0; i < 2; i++) {
    const r = await chat(lab, pinned('homelab/reasoning'));
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'upstream_unavailable');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  }
  assert.equal(lab.svc.states.get('spark')!.health.healthy, false);

  const fast = await chat(lab, pinned('homelab/reasoning'));
  assert.equal(fast.status, 503);
  assert.equal(fast.json.error.code, 'upstream_unavailable');
  assert.ok(Number(fast.headers.get('retry-after')) >= 1);
  assert.equal(brain.received.length, 2, 'an unhealthy terminal route is not called');

  await lab.svc.health.probeAll();
  const ok = await chat(lab, pinned('homelab/reasoning'));
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('x-homelab-route'), 'spark');
  await assertSettled(lab);
});

test('S17: a 5xx storm is bounded: each request tries each route of its chain at most once, and routes marked down stop being tried', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-6000']!.setFault({ kind: 'status', status: 500 });
  lab.sims.spark!.setFault({ kind: 'status', status: 503 });

  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await chat(lab, coding())).status);
  assert.deepEqual(new Set(statuses), new Set([503]));
  // Two attempts each before unhealthy_after marks them down; none after that.
  assert.equal(lab.sims['ubuntu-6000']!.received.length, 2);
  assert.equal(lab.sims.spark!.received.length, 2);
  assert.equal(lab.sims['win-5090']!.received.length, 0);
  await assertSettled(lab);
});
