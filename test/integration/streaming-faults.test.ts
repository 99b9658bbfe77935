// Faults around streams and disconnects (SPEC §5 step 9, reliability bug classes 1–3): a
// client that leaves frees its slot and closes the upstream at once, whether it was streaming,
// queued or waiting for a non-stream answer; an upstream that dies, stalls or just stops after
// the first byte ends the client's stream with `event: error` and never `[DONE]`, is logged,
// and is never failed over; a healthy stream is not cut by the request deadline.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import OpenAI from 'openai';
import { assertSettled, chat, coding, labFor, logLines, pinned, readEvents, readToEnd, sdk, send, sseEvents, streamedContent, until, requestFailures } from '../helpers/faults.ts';

const OTHERS_OF_6000 = ['ubuntu-4090', 'spark', 'win-5090'];

test('S32: a healthy stream is relayed whole, with SSE headers and [DONE]', async (t) => {
  const lab = await labFor(t);
  const res = await send(lab, coding(undefined, { stream: true, stream_options: { include_usage: true } }));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.equal(res.headers.get('x-homelab-route'), 'ubuntu-6000');
  const { text, clean } = await readToEnd(res);
  assert.ok(clean);
  const events = sseEvents(text);
  assert.equal(events.at(-1)!.data, '[DONE]');
  assert.ok(events.every((e) => e.event === null), 'the router adds no events of its own');
  // role event + 8 content chunks + usage + [DONE], as the upstream sent them
  assert.equal(events.length, 11);
  assert.match(streamedContent(events), /^\[glm-4\.5-air-awq\] echo: Refactor/);
  await assertSettled(lab);
});

test('bug class 2: a stream whose first route fails before any byte fails over and streams from the next one', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'status', status: 503 });
  const stream = await sdk(lab).chat.completions.create({ ...coding(), stream: true }).withResponse();
  assert.equal(stream.response.headers.get('x-homelab-route'), 'spark');
  assert.equal(stream.response.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>spark');
  let content = '';
  for await (const chunk of stream.data) content += chunk.choices[0]?.delta?.content ?? '';
  assert.match(content, /^\[qwen3\.6-35b-a3b-fp8\] echo:/);
  await assertSettled(lab);
});

test('S5: a client leaving mid-stream aborts the upstream at once and frees the slot for the next request', async (t) => {
  // One slot and no queue: a leaked slot would turn the follow-up request into a 503.
  const lab = await labFor(t, { routeOverrides: { spark: { slots: 1, queue: 0 } } });
  const brain = lab.sims.spark!;
  brain.pushFault({ kind: 'stall_after', chunks: 3 });

  const stream = await sdk(lab).chat.completions.create({ ...pinned('homelab/reasoning'), stream: true }, { headers: { 'x-request-id': 'leaves-mid-stream' } });
  let seen = 0;
  for await (const _chunk of stream) {
    if (++seen === 2) break; // the SDK aborts the HTTP request on break
  }
  await brain.waitForAborts(1);
  await until('the upstream socket to close', () => brain.openSockets() === 0);
  await assertSettled(lab);

  const next = await chat(lab, pinned('homelab/reasoning'));
  assert.equal(next.status, 200);
  assert.equal(next.headers.get('x-homelab-route'), 'spark');

  // A client leaving is not the upstream's fault.
  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 0);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  const decision = (await logLines(lab, 'decisions')).find((l) => l.request_id === 'leaves-mid-stream');
  assert.equal(decision?.status, 499);
  await assertSettled(lab);
});

test('S5: a client leaving while the upstream is still sending closes the upstream too', async (t) => {
  // Far more output than the socket buffers hold: the upstream cannot finish unless the
  // client reads, so it is certainly still sending when the client goes.
  const lab = await labFor(t, { sim: { 'ubuntu-6000': { chunks: 50_000 } } });
  const hands = lab.sims['ubuntu-6000']!;
  const client = new AbortController();
  const res = await send(lab, coding(undefined, { stream: true }), { signal: client.signal });
  assert.equal(res.status, 200);
  const first = await readEvents(res, 3);
  assert.ok(first.length >= 3);
  client.abort();

  await hands.waitForAborts(1);
  await until('the upstream socket to close', () => hands.openSockets() === 0);
  assert.equal(hands.completed(), 0);
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.consecutiveFailures, 0);
  await assertSettled(lab);
});

test('S6: a client leaving while its request is queued leaves the queue and is never sent upstream', async (t) => {
  const lab = await labFor(t, { routeOverrides: { spark: { slots: 1, queue: 2, queue_timeout_ms: 60_000 } } });
  const brain = lab.sims.spark!;
  const admission = lab.svc.states.get('spark')!.admission;
  brain.pushFault({ kind: 'hang' });
  const holder = new AbortController();
  const held = send(lab, pinned('homelab/reasoning', 'holder'), { signal: holder.signal }).catch(() => null);
  await brain.waitForRequests(1);

  const queuedClient = new AbortController();
  const queued = send(lab, pinned('homelab/reasoning', 'queued and then gone', { stream: true }), { signal: queuedClient.signal }).catch(() => null);
  await until('the request to queue', () => admission.queued === 1);
  queuedClient.abort();
  await until('the queue to empty', () => admission.queued === 0);
  await queued;
  assert.equal(admission.inFlight, 1, 'only the holder holds a slot');

  holder.abort();
  await held;
  await brain.waitForAborts(1);
  await assertSettled(lab);
  // With nothing in flight or queued, nothing can reach the upstream later either.
  assert.deepEqual(brain.received.map((r) => r.body.messages[0].content), ['holder']);
  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 0);
});

test('S7: a client leaving during a non-stream request aborts the upstream and frees the slot', async (t) => {
  const lab = await labFor(t, { routeOverrides: { spark: { slots: 1, queue: 0 } } });
  const brain = lab.sims.spark!;
  brain.pushFault({ kind: 'hang' });
  const client = new AbortController();
  const pending = send(lab, pinned('homelab/reasoning'), { signal: client.signal, headers: { 'x-request-id': 'leaves-non-stream' } }).catch((e: unknown) => e);
  await brain.waitForRequests(1);
  client.abort();

  await brain.waitForAborts(1);
  await until('the upstream socket to close', () => brain.openSockets() === 0);
  await pending;
  await assertSettled(lab);
  const next = await chat(lab, pinned('homelab/reasoning'));
  assert.equal(next.status, 200);

  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 0);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  const decision = (await logLines(lab, 'decisions')).find((l) => l.request_id === 'leaves-non-stream');
  assert.equal(decision?.status, 499);
});

test('S18: an upstream dying mid-stream ends the stream with event: error, no [DONE], no failover; the failure is logged', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  hands.pushFault({ kind: 'die_after', chunks: 3 });

  const res = await send(lab, coding(undefined, { stream: true }), { headers: { 'x-request-id': 'dies-mid-stream' } });
  assert.equal(res.status, 200);
  const { text, clean } = await readToEnd(res);
  assert.ok(clean, 'the router ends the stream itself instead of dropping the connection');
  const events = sseEvents(text);
  assert.equal(events.length, 4);
  assert.ok(events.slice(0, 3).every((e) => e.event === null && e.data.startsWith('{')), 'the three events that arrived are relayed');
  assert.equal(events[3]!.event, 'error');
  const error = JSON.parse(events[3]!.data);
  assert.equal(error.error.code, 'upstream_error');
  assert.match(error.error.message, /ubuntu-6000/);
  assert.ok(!text.includes('[DONE]'));
  for (const other of OTHERS_OF_6000) assert.equal(lab.sims[other]!.received.length, 0, `failed over to ${other} after the first byte`);

  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.equal(failures.length, 1);
  assert.equal(failures[0].route, 'ubuntu-6000');
  assert.equal(failures[0].phase, 'after_first_byte');
  assert.equal(failures[0].request_id, 'dies-mid-stream');
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.consecutiveFailures, 1);
  const decision = (await logLines(lab, 'decisions')).find((l) => l.request_id === 'dies-mid-stream');
  assert.equal(decision?.error, 'upstream_error');
  await assertSettled(lab);
});

test('S18: the SDK sees a mid-stream death as an error, not as a short answer', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'die_after', chunks: 2 });
  const stream = await sdk(lab).chat.completions.create({ ...coding(), stream: true });
  let chunks = 0;
  const err = await (async () => {
    for await (const _chunk of stream) chunks++;
  })().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${String(err)}`);
  assert.equal(chunks, 2);
  await assertSettled(lab);
});

test('S20: a stream that stalls after its first events is ended after stream_idle_timeout_ms and the upstream closed', async (t) => {
  const lab = await labFor(t, { edit: (doc) => void (doc.server.stream_idle_timeout_ms = 150) });
  const hands = lab.sims['ubuntu-6000']!;
  hands.pushFault({ kind: 'stall_after', chunks: 2 });

  const res = await send(lab, coding(undefined, { stream: true }));
  const { text } = await readToEnd(res);
  const events = sseEvents(text);
  assert.equal(events.length, 3);
  assert.equal(events[2]!.event, 'error');
  assert.ok(!text.includes('[DONE]'));
  await hands.waitForAborts(1);
  for (const other of OTHERS_OF_6000) assert.equal(lab.sims[other]!.received.length, 0);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.phase]), [['ubuntu-6000', 'after_first_byte']]);
  await assertSettled(lab);
});

test('S8: a stream that ends without [DONE] gets an error event and counts as an upstream failure', async (t) => {
  // An upstream that closes its stream properly but early: no [DONE], no finish_reason.
  const early = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const frame = (content: string) => `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'qwen3.6-35b-a3b-fp8', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    res.end(frame('half ') + frame('an answer'));
  });
  await new Promise<void>((r) => early.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => {
    early.closeAllConnections();
    early.close(() => r());
  }));
  const lab = await labFor(t, { routeOverrides: { spark: { url: `http://127.0.0.1:${(early.address() as AddressInfo).port}/v1` } } });

  const res = await send(lab, pinned('homelab/reasoning', 'hi', { stream: true }));
  const { text } = await readToEnd(res);
  const events = sseEvents(text);
  assert.equal(streamedContent(events), 'half an answer');
  assert.equal(events.at(-1)!.event, 'error');
  assert.ok(!text.includes('[DONE]'));
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.equal(failures.length, 1);
  assert.match(failures[0].detail, /without \[DONE\]/);
  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 1);
  await assertSettled(lab);
});

test('a healthy stream may run past server.request_timeout_ms: the deadline covers attempts, not a stream under way', async (t) => {
  // Six 100 ms gaps outlast the 300 ms deadline; nothing is wrong with this stream.
  const lab = await labFor(t, {
    sim: { spark: { tokenIntervalMs: 100, chunks: 6 } },
    edit: (doc) => {
      doc.server.request_timeout_ms = 300;
      for (const r of Object.values<any>(doc.routes)) r.timeout_ms = 200;
    },
  });
  const res = await send(lab, pinned('homelab/reasoning', 'think slowly', { stream: true }));
  const { text, clean } = await readToEnd(res);
  assert.ok(clean);
  const events = sseEvents(text);
  assert.ok(events.every((e) => e.event === null), `an error event cut a healthy stream: ${text.slice(-300)}`);
  assert.equal(events.at(-1)!.data, '[DONE]');
  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 0);
  assert.deepEqual(requestFailures(await logLines(lab, 'failures')), []);
  await assertSettled(lab);
});

test('S33: a client that stops reading is given stream_idle_timeout_ms, then the upstream is closed and the slot freed', async (t) => {
  // Each event carries ~64 KiB, so socket buffers fill after a few events and the router's
  // writes start to report backpressure; the client below never reads a byte.
  const lab = await labFor(t, {
    edit: (doc) => void (doc.server.stream_idle_timeout_ms = 200),
    sim: { 'ubuntu-6000': { chunks: 400, reply: () => 'x'.repeat(400 * 64 * 1024) } },
  });
  const hands = lab.sims['ubuntu-6000']!;
  const { request } = await import('node:http');
  const port = Number(new URL(lab.base).port);
  const req = request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' } });
  req.on('error', () => undefined);
  const res = await new Promise<import('node:http').IncomingMessage>((resolve) => {
    req.on('response', resolve);
    req.end(JSON.stringify(coding(undefined, { stream: true })));
  });
  assert.equal(res.statusCode, 200);
  res.pause();
  await hands.waitForAborts(1);
  await assertSettled(lab);
  assert.ok(hands.completed() === 0, 'the upstream never finished: it was cut off');
  res.destroy();
});
