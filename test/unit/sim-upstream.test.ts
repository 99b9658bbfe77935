import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { test, type TestContext } from 'node:test';
import { startSimUpstream, type SimOptions, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import { readToEnd } from '../helpers/faults.ts';

const MODEL = 'qwen3-32b';

async function sim(t: TestContext, opts: Partial<SimOptions> = {}): Promise<SimUpstream> {
  const s = await startSimUpstream({ model: MODEL, ...opts });
  t.after(() => s.close());
  return s;
}

/** Response bodies here are checked field by field, so they are read untyped. */
async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}

function chatBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, messages: [{ role: 'user', content: 'Say hello to the cluster' }], ...extra };
}

function post(s: SimUpstream, body: unknown, init: { signal?: AbortSignal; path?: string } = {}): Promise<Response> {
  return fetch(`${s.url}${init.path ?? '/chat/completions'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal ?? null,
  });
}

/** The `data:` payloads of an SSE body, in order. */
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}

/** Reads until `n` SSE events have arrived. */
async function readEvents(res: Response, n: number): Promise<string[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (sseData(text).length < n) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return sseData(text);
}

/**
 * POST on a fresh connection (no keep-alive pool): resolves with the response or the error.
 * A pooled socket can outlive a stop() on the client side and fail with a socket error
 * instead of ECONNREFUSED, which is not what these tests are about.
 */
function rawPost(s: SimUpstream): Promise<IncomingMessage | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const req = httpRequest(`${s.url}/chat/completions`, { method: 'POST', agent: false }, resolve);
    req.on('error', resolve);
    req.end(JSON.stringify(chatBody()));
  });
}

test('non-stream reply carries the served model, content and usage; the request is recorded', async (t) => {
  const s = await sim(t, { runtime: 'vllm' });
  const res = await post(s, chatBody({ tools: [{ type: 'function', function: { name: 'f', parameters: {} } }], tool_choice: 'none' }));
  assert.equal(res.status, 200);
  const body = await json(res);
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.model, MODEL);
  assert.match(body.id, /^chatcmpl-/);
  assert.equal(body.choices[0].message.role, 'assistant');
  assert.equal(body.choices[0].message.content, `[${MODEL}] echo: Say hello to the cluster`);
  assert.equal(body.choices[0].finish_reason, 'stop');
  assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
  assert.ok(body.usage.prompt_tokens > 0);
  assert.equal(s.received.length, 1);
  assert.equal(s.received[0]!.path, '/v1/chat/completions');
  assert.equal(s.received[0]!.body.tools.length, 1);
  assert.equal(s.received[0]!.headers['content-type'], 'application/json');
  assert.equal(s.completed(), 1);
  assert.equal(s.inFlight(), 0);
});

test('wrong model gets vLLM 404, malformed JSON gets 400, unknown path 404', async (t) => {
  const s = await sim(t);
  const wrong = await post(s, chatBody({ model: 'homelab/auto' }));
  assert.equal(wrong.status, 404);
  assert.deepEqual(await json(wrong), {
    object: 'error',
    message: 'The model `homelab/auto` does not exist.',
    type: 'NotFoundError',
    param: null,
    code: 404,
  });
  const bad = await post(s, '{"model":');
  assert.equal(bad.status, 400);
  assert.equal(typeof (await json(bad)).error.message, 'string');
  const none = await post(s, chatBody(), { path: '/embeddings' });
  assert.equal(none.status, 404);
  await none.body?.cancel();
  assert.equal(s.completed(), 0);
});

test('custom reply function and the reply fault', async (t) => {
  const s = await sim(t, { reply: (b) => `n=${b.messages.length}` });
  s.pushFault({ kind: 'reply', content: '{"ok":true}' });
  const first = await json(post(s, chatBody()));
  const second = await json(post(s, chatBody()));
  assert.equal(first.choices[0].message.content, '{"ok":true}');
  assert.equal(second.choices[0].message.content, 'n=1');
});

test('stream: role chunk first, content chunks, finish on the last, usage chunk, then [DONE]', async (t) => {
  const s = await sim(t, { chunks: 5 });
  const res = await post(s, chatBody({ stream: true, stream_options: { include_usage: true } }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  const { text, clean } = await readToEnd(res);
  assert.equal(clean, true);
  const data = sseData(text);
  assert.equal(data.at(-1), '[DONE]');
  const frames = data.slice(0, -1).map((d) => JSON.parse(d));
  assert.equal(frames.length, 1 + 5 + 1);
  assert.ok(frames.every((f) => f.object === 'chat.completion.chunk' && f.model === MODEL && f.id === frames[0].id));
  assert.deepEqual(frames[0].choices[0].delta, { role: 'assistant', content: '' });
  const content = frames.slice(1, 6);
  assert.deepEqual(
    content.map((f) => f.choices[0].finish_reason),
    [null, null, null, null, 'stop'],
  );
  assert.equal(content.map((f) => f.choices[0].delta.content).join(''), `[${MODEL}] echo: Say hello to the cluster`);
  const usage = frames[6];
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage.total_tokens, usage.usage.prompt_tokens + usage.usage.completion_tokens);

  const plain = await post(s, chatBody({ stream: true }));
  const plainData = sseData((await readToEnd(plain)).text);
  assert.equal(plainData.length, 1 + 5 + 1, 'no usage chunk unless include_usage');
  assert.equal(s.completed(), 2);
});

test('queue overflow: requests past the slots wait FIFO and do not count as in flight', async (t) => {
  const s = await sim(t, { slots: 2 });
  s.pushFault({ kind: 'hang' }, { kind: 'hang' });
  const ac = new AbortController();
  const hung1 = post(s, chatBody(), { signal: ac.signal }).catch((e: unknown) => e);
  const hung2 = post(s, chatBody()).catch((e: unknown) => e);
  await s.waitForRequests(2);
  const queued = post(s, chatBody());
  await s.waitForRequests(3);
  assert.equal(s.inFlight(), 2);

  ac.abort();
  await s.waitForAborts(1);
  const res = await queued;
  assert.equal(res.status, 200);
  await json(res);
  assert.equal(s.peakInFlight(), 2);
  assert.equal(s.inFlight(), 1, 'the second hung request still holds its slot');
  assert.ok((await hung1) instanceof Error);

  await s.stop();
  assert.ok((await hung2) instanceof Error);
  assert.equal(s.aborted(), 1, 'the machine going down is not a client abort');
  assert.equal(s.inFlight(), 0);
});

test('many concurrent requests never exceed the slots, and the gauges return to zero', async (t) => {
  const s = await sim(t, { slots: 3, latencyMs: 5, tokenIntervalMs: 1, chunks: 4 });
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      post(s, chatBody({ stream: i % 2 === 0 })).then(async (r) => ({ status: r.status, text: await r.text() })),
    ),
  );
  assert.ok(results.every((r) => r.status === 200));
  assert.ok(s.peakInFlight() <= 3 && s.peakInFlight() >= 1);
  assert.equal(s.completed(), 12);
  assert.equal(s.inFlight(), 0);
  s.resetStats();
  assert.equal(s.peakInFlight(), 0);
  assert.equal(s.completed(), 0);
  assert.equal(s.received.length, 0);
});

test('reject overflow: llama.cpp answers 503 no slot, LM Studio 429', async (t) => {
  for (const [runtime, status] of [['llamacpp', 503], ['lmstudio', 429]] as const) {
    const s = await sim(t, { runtime, slots: 1, overflow: 'reject' });
    s.pushFault({ kind: 'hang' });
    const ac = new AbortController();
    const hung = post(s, chatBody(), { signal: ac.signal }).catch((e: unknown) => e);
    await s.waitForRequests(1);
    const res = await post(s, chatBody());
    assert.equal(res.status, status);
    const body = await json(res);
    if (runtime === 'llamacpp') assert.equal(body.error.message, 'no slot available');
    assert.equal(s.peakInFlight(), 1);
    ac.abort();
    await s.waitForAborts(1);
    await hung;
    assert.equal(s.inFlight(), 0);
  }
});

test('status faults: 429 with retry-after, vLLM 400 body, default envelope; FIFO then standing fault', async (t) => {
  const s = await sim(t);
  const vllm400 = {
    object: 'error',
    message: "This model's maximum context length is 32768 tokens.",
    type: 'BadRequestError',
    param: null,
    code: 400,
  };
  s.pushFault({ kind: 'status', status: 429, headers: { 'retry-after': '5' } }, { kind: 'status', status: 400, body: vllm400 });
  s.setFault({ kind: 'status', status: 502 });

  const r429 = await post(s, chatBody());
  assert.equal(r429.status, 429);
  assert.equal(r429.headers.get('retry-after'), '5');
  assert.equal(typeof (await json(r429)).error.message, 'string');
  const r400 = await post(s, chatBody());
  assert.equal(r400.status, 400);
  assert.deepEqual(await json(r400), vllm400);
  for (let i = 0; i < 2; i++) {
    const r = await post(s, chatBody());
    assert.equal(r.status, 502);
    assert.equal((await json(r)).error.code, 502);
  }
  s.setFault(null);
  assert.equal((await post(s, chatBody())).status, 200);
  assert.equal(s.completed(), 1);
  assert.equal(s.received.length, 5);
});

test('loading, cuda and html faults', async (t) => {
  const s = await sim(t);
  s.pushFault({ kind: 'loading' }, { kind: 'cuda' }, { kind: 'html', status: 502 });
  const loading = await post(s, chatBody());
  assert.equal(loading.status, 503);
  assert.deepEqual(await json(loading), { error: { code: 503, message: 'Loading model', type: 'unavailable_error' } });
  const cuda = await post(s, chatBody());
  assert.equal(cuda.status, 500);
  assert.match((await json(cuda)).error.message, /^CUDA error/);
  const html = await post(s, chatBody());
  assert.equal(html.status, 502);
  assert.equal(html.headers.get('content-type'), 'text/html');
  assert.match(await html.text(), /<html>/);
  assert.equal(s.inFlight(), 0);
});

test('refuse resets the connection without a response', async (t) => {
  const s = await sim(t);
  s.pushFault({ kind: 'refuse' });
  const err = await post(s, chatBody()).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error);
  assert.equal(s.aborted(), 0);
  assert.equal((await post(s, chatBody())).status, 200);
});

test('die_after truncates a stream without [DONE], and a non-stream body mid-JSON', async (t) => {
  const s = await sim(t, { chunks: 6 });
  s.pushFault({ kind: 'die_after', chunks: 3 }, { kind: 'die_after', chunks: 0 });
  const res = await post(s, chatBody({ stream: true }));
  assert.equal(res.status, 200);
  const { text, clean } = await readToEnd(res);
  assert.equal(clean, false, 'the stream ends with an error, not a clean end');
  const data = sseData(text);
  assert.equal(data.length, 3);
  assert.ok(!data.includes('[DONE]'));

  const whole = await post(s, chatBody());
  assert.equal(whole.status, 200);
  await assert.rejects(whole.text());
  assert.equal(s.aborted(), 0, 'the sim dropping the connection is not a client abort');
  assert.equal(s.completed(), 0);
  assert.equal(s.inFlight(), 0);
});

test('stall_after sends some chunks then goes silent until the client aborts', async (t) => {
  const s = await sim(t, { chunks: 4 });
  s.pushFault({ kind: 'stall_after', chunks: 2 });
  const ac = new AbortController();
  const res = await post(s, chatBody({ stream: true }), { signal: ac.signal });
  const events = await readEvents(res, 2);
  assert.equal(events.length, 2);
  assert.equal(s.inFlight(), 1);
  ac.abort();
  await s.waitForAborts(1);
  assert.equal(s.inFlight(), 0);
  assert.equal(s.completed(), 0);
});

test('hang holds the slot until the client aborts, then releases it', async (t) => {
  const s = await sim(t, { slots: 1 });
  s.pushFault({ kind: 'hang' });
  const ac = new AbortController();
  const pending = post(s, chatBody({ stream: true }), { signal: ac.signal }).catch((e: unknown) => e);
  await s.waitForRequests(1);
  assert.equal(s.inFlight(), 1);
  ac.abort();
  await s.waitForAborts(1);
  assert.equal(s.aborted(), 1);
  assert.equal(s.inFlight(), 0);
  assert.equal(((await pending) as Error).name, 'AbortError');
  assert.equal((await post(s, chatBody())).status, 200, 'the freed slot admits the next request');
});

test('delay fault and a client abort during latency clear their timers', async (t) => {
  const s = await sim(t);
  s.pushFault({ kind: 'delay', ms: 1 });
  assert.equal((await post(s, chatBody())).status, 200);

  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  s.pushFault({ kind: 'delay', ms: 600_000 });
  const ac = new AbortController();
  const pending = post(s, chatBody(), { signal: ac.signal }).catch((e: unknown) => e);
  await s.waitForRequests(2);
  assert.equal(s.inFlight(), 1);
  ac.abort();
  await s.waitForAborts(1);
  await pending;
  const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  assert.ok(after <= before, `timers before ${before}, after ${after}`);
  assert.equal(s.inFlight(), 0);
});

test('close() with requests in every state leaves no sockets and no timers', async (t) => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const s = await startSimUpstream({ model: MODEL, slots: 1, latencyMs: 600_000 });
  t.after(() => s.close());
  // A slow generation and one queued behind it, on connections no client pool keeps.
  const a = rawPost(s);
  const b = rawPost(s);
  await s.waitForRequests(2);
  assert.equal(s.openSockets(), 2);
  assert.equal(s.inFlight(), 1);
  const waiting = s.waitForAborts(1);
  await s.close();
  await Promise.all([a, b]);
  assert.equal(s.openSockets(), 0);
  assert.equal(s.inFlight(), 0);
  assert.equal(s.aborted(), 0);
  await assert.rejects(waiting, /closed/);
  const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  assert.ok(after <= before, `timers before ${before}, after ${after}`);
});

test('stop() refuses connections; restart() serves again on the same port', async (t) => {
  const s = await sim(t);
  assert.equal((await post(s, chatBody())).status, 200);
  await s.stop();
  assert.equal(s.openSockets(), 0);
  const err = await rawPost(s);
  assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  await s.restart();
  const res = await post(s, chatBody());
  assert.equal(res.status, 200);
  assert.equal((await json(res)).model, MODEL);
});

test('health endpoints per runtime honour setHealth', async (t) => {
  const vllm = await sim(t, { runtime: 'vllm' });
  const h = await fetch(`${vllm.origin}/health`);
  assert.equal(h.status, 200);
  assert.equal(await h.text(), '');
  const models = await json(fetch(`${vllm.url}/models`));
  assert.deepEqual(models, { object: 'list', data: [{ id: MODEL, object: 'model', owned_by: 'vllm' }] });
  vllm.setHealth('cuda');
  const sick = await fetch(`${vllm.origin}/health`);
  assert.equal(sick.status, 500);
  assert.match((await json(sick)).error.message, /CUDA/);
  vllm.setHealth('down');
  const down = await fetch(`${vllm.url}/models`);
  assert.equal(down.status, 503);
  await down.body?.cancel();
  vllm.setHealth(null);
  assert.equal((await fetch(`${vllm.origin}/health`)).status, 200);

  const llama = await sim(t, { runtime: 'llamacpp' });
  assert.deepEqual(await json(fetch(`${llama.origin}/health`)), { status: 'ok' });
  llama.setHealth('loading');
  const loading = await fetch(`${llama.origin}/health`);
  assert.equal(loading.status, 503);
  assert.equal((await json(loading)).error.message, 'Loading model');

  const ollama = await sim(t, { runtime: 'ollama' });
  const tags = await json(fetch(`${ollama.origin}/api/tags`));
  assert.equal(tags.models[0].name, MODEL);

  const lms = await sim(t, { runtime: 'lmstudio' });
  const none = await fetch(`${lms.origin}/health`);
  assert.equal(none.status, 404);
  await none.body?.cancel();
  assert.equal((await json(fetch(`${lms.url}/models`))).data[0].owned_by, 'lmstudio');
});

test('embeddings are deterministic 8-dimension vectors for string and array input', async (t) => {
  const s = await sim(t, { embeddings: true });
  const one = await json(post(s, { model: MODEL, input: 'hello' }, { path: '/embeddings' }));
  const many = await json(post(s, { model: MODEL, input: ['hello', 'world'] }, { path: '/embeddings' }));
  assert.equal(one.object, 'list');
  assert.equal(one.model, MODEL);
  assert.equal(one.data.length, 1);
  assert.equal(one.data[0].embedding.length, 8);
  assert.deepEqual(many.data[0].embedding, one.data[0].embedding);
  assert.notDeepEqual(many.data[1].embedding, one.data[0].embedding);
  assert.deepEqual(
    many.data.map((d: { index: number }) => d.index),
    [0, 1],
  );
  assert.ok(many.usage.prompt_tokens > 0 && many.usage.total_tokens === many.usage.prompt_tokens);
  assert.equal(s.received.length, 2);
  await s.waitForRequests(2);
});
