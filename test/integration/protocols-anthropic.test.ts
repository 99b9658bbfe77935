// /v1/messages and /v1/messages/count_tokens with the official Anthropic SDK against the
// router and a scripted chat upstream on loopback: non-stream, the SDK's stream accumulator,
// a tool round trip with an image inside tool_result, errors, native passthrough.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { leftovers, postJson, readJsonLines, startLab, type Lab } from '../helpers/lab.ts';
import { completion, startChatUpstream, type Answer, type ChatUpstream } from '../helpers/chat-upstream.ts';
import { pollUntil } from '../helpers/poll.ts';
import { chatSse, chunk, usageChunk } from '../helpers/sse.ts';

let up: ChatUpstream;
let lab: Lab;
let client: Anthropic;
/** What the upstream answers next; set per test. */
let next: (body: any, path: string) => Answer = () => ({ kind: 'json', body: completion({ content: 'hello' }) });

const BILLING = { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.197.e3f; cc_entrypoint=sdk-cli; cch=7a1b2;' } as const;

before(async () => {
  up = await startChatUpstream((body, path) => next(body, path));
  lab = await startLab({
    edit: (doc) => {
      for (const r of Object.values<any>(doc.routes)) r.url = up.url;
      doc.routes['spark'].native = ['messages'];
      doc.routes['ubuntu-6000'].tools = { sanitize: true };
      doc.routes['ubuntu-4090'].runtime = 'llamacpp';
      doc.routes['ubuntu-6000'].thinking = 'chat_template_kwargs';
      doc.routes['ubuntu-4090'].thinking = 'reasoning_effort';
    },
  });
  client = new Anthropic({ baseURL: lab.base, apiKey: 'test-key', maxRetries: 0 });
});

after(async () => {
  await lab.close();
  await up.close();
});

function lastChat(): any {
  return up.received.filter((r) => r.path === '/v1/chat/completions').at(-1)!.body;
}

test('non-stream: text answer, end_turn, usage, decision headers; the upstream gets one system message without the billing header', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'hello there' }, 'stop', { prompt_tokens: 20, completion_tokens: 3 }) });
  const { data, response } = await client.messages
    .create({ model: 'homelab/code', max_tokens: 200, system: [BILLING, { type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.deepEqual(data.content, [{ type: 'text', text: 'hello there' }]);
  assert.equal(data.stop_reason, 'end_turn');
  assert.equal(data.usage.input_tokens, 20);
  assert.equal(data.usage.output_tokens, 3);
  assert.equal(data.model, 'homelab/code');
  assert.equal(response.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.equal(response.headers.get('x-homelab-reason'), 'pinned_model');
  const sent = lastChat();
  assert.equal(sent.model, 'glm-4.5-air-awq');
  assert.deepEqual(sent.messages, [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'hi' }]);
  assert.equal(sent.max_tokens, 200);
});

test('stream through the SDK accumulator: thinking, text, then a tool call; stop_reason tool_use; usage asked for and reported', async () => {
  next = () => ({
    kind: 'sse',
    text: chatSse([
      chunk({ role: 'assistant', content: '' }),
      chunk({ reasoning_content: 'The user wants a file.' }),
      chunk({ content: 'Reading it.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_7', type: 'function', function: { name: 'Read', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"file_path":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"/etc/hosts"}' } }] }),
      chunk({}, 'stop'),
      usageChunk(50, 12),
    ]),
  });
  const tools = [{ name: 'Read', description: 'Read a file', input_schema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' as const, properties: { file_path: { type: 'string', format: 'uri', pattern: '^/' } }, required: ['file_path'], propertyNames: { pattern: '^[a-z_]+$' } } }];
  const stream = client.messages.stream({ model: 'homelab/code', max_tokens: 32000, stream: true, thinking: { type: 'enabled', budget_tokens: 31999 }, tools, messages: [{ role: 'user', content: 'show /etc/hosts' }] });
  const texts: string[] = [];
  stream.on('text', (t) => texts.push(t));
  const msg = await stream.finalMessage();
  assert.deepEqual(msg.content.map((b) => b.type), ['thinking', 'text', 'tool_use']);
  assert.equal((msg.content[0] as any).thinking, 'The user wants a file.');
  assert.deepEqual(msg.content[2], { type: 'tool_use', id: 'call_7', name: 'Read', input: { file_path: '/etc/hosts' } });
  assert.equal(msg.stop_reason, 'tool_use');
  assert.equal(msg.usage.output_tokens, 12);
  assert.equal(texts.join(''), 'Reading it.');
  const sent = lastChat();
  assert.equal(sent.stream, true);
  assert.deepEqual(sent.stream_options, { include_usage: true });
  assert.equal('thinking' in sent, false);
  // tools.sanitize on this route: what grammar engines reject is gone, the structure stays.
  assert.deepEqual(sent.tools[0].function.parameters, { type: 'object', properties: { file_path: { type: 'string' } }, required: ['file_path'] });
  assert.deepEqual(leftovers(lab), {});
});

test('a stream asked for and answered whole by the upstream still reaches the client as a stream', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'whole', tool_calls: [{ id: 'c9', type: 'function', function: { name: 'Read', arguments: '{"file_path":"x"}' } }] }, 'tool_calls', { prompt_tokens: 8, completion_tokens: 6 }) });
  const msg = await client.messages.stream({ model: 'homelab/code', max_tokens: 100, messages: [{ role: 'user', content: 'go' }], tools: [{ name: 'Read', input_schema: { type: 'object' } }] }).finalMessage();
  assert.deepEqual(msg.content, [{ type: 'text', text: 'whole' }, { type: 'tool_use', id: 'c9', name: 'Read', input: { file_path: 'x' } }]);
  assert.equal(msg.stop_reason, 'tool_use');
  assert.equal(msg.usage.output_tokens, 6);
});

test('tool round trip with a screenshot inside tool_result: tool message first, image in a user message, routed as an image request', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'It is a red square.' }) });
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  const { data, response } = await client.messages
    .create({
      model: 'homelab/auto',
      max_tokens: 100,
      tools: [{ name: 'Screenshot', input_schema: { type: 'object', properties: {} } }],
      messages: [
        { role: 'user', content: 'take a screenshot' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Screenshot', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }] }, { type: 'text', text: 'what do you see?' }] },
      ],
    })
    .withResponse();
  assert.equal(data.stop_reason, 'end_turn');
  const sent = lastChat();
  assert.deepEqual(sent.messages.map((m: any) => m.role), ['user', 'assistant', 'tool', 'user']);
  assert.deepEqual(sent.messages[1].tool_calls, [{ id: 'toolu_01', type: 'function', function: { name: 'Screenshot', arguments: '{}' } }]);
  assert.equal(sent.messages[2].tool_call_id, 'toolu_01');
  assert.equal(sent.messages[3].content[0].image_url.url, `data:image/png;base64,${png}`);
  const route = response.headers.get('x-homelab-route');
  assert.ok(route === 'ubuntu-4090' || route === 'spark', `an image goes to a vision route, got ${route}`);
});

test('errors come in the Anthropic envelope and the SDK raises its own classes', async () => {
  const sentBefore = up.received.length;
  await assert.rejects(client.messages.create({ model: 'claude-nonexistent', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (e: any) => e instanceof Anthropic.NotFoundError && (e.error as any)?.error?.type === 'not_found_error');
  const raw = await postJson(lab.base + '/v1/messages', { model: 'homelab/code', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(raw.status, 400);
  assert.deepEqual(Object.keys(raw.json), ['type', 'error']);
  assert.equal(raw.json.type, 'error');
  assert.equal(raw.json.error.type, 'invalid_request_error');
  assert.match(raw.json.error.message, /max_tokens/);
  const notJson = await postJson(lab.base + '/v1/messages', '{"model":');
  assert.equal(notJson.status, 400);
  assert.equal(notJson.json.type, 'error');
  const badImage = await postJson(lab.base + '/v1/messages', { model: 'homelab/auto', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'image', source: { type: 'base64' } }] }] }] });
  assert.equal(badImage.status, 400);
  assert.equal(badImage.json.error.type, 'invalid_request_error');
  assert.match(badImage.json.error.message, /messages\[0\]\.content\[0\]\.content\[0\]\.source/);
  assert.equal(up.received.length, sentBefore, 'bad input reaches no upstream');
  assert.deepEqual(leftovers(lab), {});
});

test('an upstream context overflow becomes "prompt is too long" so the client compacts', async () => {
  next = () => ({ kind: 'json', status: 400, body: { object: 'error', message: "This model's maximum context length is 131072 tokens. However, you requested 140000 tokens (108000 in the messages, 32000 in the completion). Please reduce the length of the messages or completion.", type: 'BadRequestError', param: null, code: 400 } });
  await assert.rejects(client.messages.create({ model: 'homelab/code', max_tokens: 4096, messages: [{ role: 'user', content: 'long' }] }), (e: any) => e instanceof Anthropic.BadRequestError && (e.error as any).error.message === 'prompt is too long: 140000 tokens > 131072 maximum');
});

test('the upstream dying mid-stream ends the stream with an error event; the SDK raises, no slot leaks', async () => {
  next = () => ({ kind: 'cut', text: chatSse([chunk({ content: 'partial ' })], { done: false }) });
  const stream = client.messages.stream({ model: 'homelab/code', max_tokens: 100, messages: [{ role: 'user', content: 'go' }] });
  await assert.rejects(stream.finalMessage());
  await pollUntil('slots released', () => (Object.keys(leftovers(lab)).length === 0 ? true : undefined));
});

test('count_tokens: the vLLM route counts with its /tokenize; a route without a tokenizer gets the estimate, flagged', async () => {
  const counted = await client.messages.countTokens({ model: 'homelab/code', system: 'sys', messages: [{ role: 'user', content: 'one two three' }] }).withResponse();
  assert.equal(counted.response.headers.get('x-homelab-estimated'), null);
  const tok = up.received.filter((r) => r.path === '/tokenize').at(-1)!;
  assert.equal(tok.body.model, 'glm-4.5-air-awq');
  assert.equal(counted.data.input_tokens, JSON.stringify(tok.body.messages).split(/\s+/).length);
  const est = await postJson(lab.base + '/v1/messages/count_tokens?beta=true', { model: 'homelab/chat', messages: [{ role: 'user', content: 'x'.repeat(400) }], tools: [{ name: 't', input_schema: { type: 'object', properties: { a: { type: 'string', description: 'y'.repeat(400) } } } }] });
  assert.equal(est.status, 200);
  assert.equal(est.headers.get('x-homelab-estimated'), '1');
  assert.ok(est.json.input_tokens > 200, 'the tools count too');
  const llama = await postJson(lab.base + '/v1/messages/count_tokens', { model: 'homelab/fast', system: 'be brief', messages: [{ role: 'user', content: 'a b c d' }] });
  assert.equal(llama.headers.get('x-homelab-route'), 'ubuntu-4090');
  assert.equal(llama.headers.get('x-homelab-estimated'), null);
  const ltok = up.received.filter((r) => r.path === '/tokenize').at(-1)!;
  assert.equal(typeof ltok.body.content, 'string', 'llama.cpp tokenizes text');
  assert.ok(ltok.body.content.includes('be brief') && ltok.body.content.includes('a b c d'));
  assert.equal(llama.json.input_tokens, JSON.stringify(ltok.body.content).split(/\s+/).length);
  // A route serving /v1/messages natively counts with its own count_tokens, given the client's body.
  next = (_b, path) => (path === '/v1/messages/count_tokens' ? { kind: 'json', body: { input_tokens: 777 } } : { kind: 'json', status: 500, body: { error: 'wrong path' } });
  const native = await postJson(lab.base + '/v1/messages/count_tokens', { model: 'homelab/reasoning', system: [BILLING, { type: 'text', text: 'S' }], messages: [{ role: 'user', content: 'hi' }] });
  assert.deepEqual(native.json, { input_tokens: 777 });
  assert.equal(native.headers.get('x-homelab-estimated'), null);
  assert.equal(up.received.at(-1)!.body.model, 'qwen3.6-35b-a3b-fp8');
  const unknown = await postJson(lab.base + '/v1/messages/count_tokens', { model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(unknown.status, 200, 'never a 404 on count_tokens');
  assert.equal(unknown.headers.get('x-homelab-estimated'), '1');
});

test('native passthrough: a route with native: [messages] gets /v1/messages as sent (model replaced, billing header dropped) and its answer unchanged', async () => {
  const answer = { id: 'msg_native', type: 'message', role: 'assistant', model: 'qwen', content: [{ type: 'text', text: 'from upstream' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 5, output_tokens: 2 } };
  next = (_body, path) => (path === '/v1/messages' ? { kind: 'json', body: answer } : { kind: 'json', status: 500, body: { error: 'wrong path' } });
  const { data, response } = await client.messages.create({ model: 'homelab/reasoning', max_tokens: 50, system: [BILLING, { type: 'text', text: 'S' }], messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(data.id, 'msg_native');
  assert.equal(response.headers.get('x-homelab-route'), 'spark');
  const sent = up.received.at(-1)!;
  assert.equal(sent.path, '/v1/messages');
  assert.equal(sent.body.model, 'qwen3.6-35b-a3b-fp8');
  assert.deepEqual(sent.body.system, [{ type: 'text', text: 'S' }]);
});

test('native passthrough, streamed: an Anthropic stream (no [DONE]) is a success, counted in the log, the route stays healthy', async () => {
  const ev = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const text =
    ev('message_start', { type: 'message_start', message: { id: 'msg_n', type: 'message', role: 'assistant', model: 'q', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 21, output_tokens: 1 } } }) +
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
    ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'native stream' } }) +
    ev('content_block_stop', { type: 'content_block_stop', index: 0 }) +
    ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 4 } }) +
    ev('message_stop', { type: 'message_stop' });
  next = () => ({ kind: 'sse', text });
  const msg = await client.messages.stream({ model: 'homelab/reasoning', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-request-id': 'native-stream-1' } }).finalMessage();
  assert.equal(msg.content[0]!.type === 'text' && msg.content[0]!.text, 'native stream');
  assert.equal(up.received.at(-1)!.path, '/v1/messages');
  lab.svc.logs.flush();
  const line = await pollUntil('decision line', () => readJsonLines(`${lab.logDir}/router-decisions.jsonl`).find((l) => l.request_id === 'native-stream-1'), { everyMs: 10 });
  assert.equal(line.status, 200);
  assert.equal(line.error, undefined, 'a clean end without [DONE] is no upstream error');
  assert.deepEqual(line.tokens, { prompt: 21, completion: 4 });
  assert.equal(lab.svc.states.get('spark')!.health.consecutiveFailures, 0);
});

test('every /v1/messages request is in the decision log with endpoint, route and tokens', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'ok' }, 'stop', { prompt_tokens: 9, completion_tokens: 1 }) });
  await client.messages.create({ model: 'homelab/code', max_tokens: 10, messages: [{ role: 'user', content: 'log me' }] }, { headers: { 'x-request-id': 'anthropic-log-1' } });
  lab.svc.logs.flush();
  const line = await pollUntil('decision line', () => readJsonLines(`${lab.logDir}/router-decisions.jsonl`).find((l) => l.request_id === 'anthropic-log-1'), { everyMs: 10 });
  assert.equal(line.endpoint, 'messages');
  assert.equal(line.route, 'ubuntu-6000');
  assert.deepEqual(line.tokens, { prompt: 9, completion: 1 });
  assert.equal(line.status, 200);
});

test('count_tokens writes a decision-log line (endpoint count_tokens); Claude Code\'s session id is logged as session, never sent upstream', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'ok' }, 'stop', { prompt_tokens: 4, completion_tokens: 1 }) });
  const session = '54c1eb09-bc4c-4d2f-98eb-6d2ab2d5e2fe';
  const userId = JSON.stringify({ device_id: 'd'.repeat(64), account_uuid: '', session_id: session });
  await postJson(lab.base + '/v1/messages/count_tokens', { model: 'homelab/chat', messages: [{ role: 'user', content: 'count me' }] }, { 'x-request-id': 'count-log-1', 'x-claude-code-session-id': session });
  const before = up.received.length;
  await client.messages.create({ model: 'homelab/code', max_tokens: 10, metadata: { user_id: userId }, messages: [{ role: 'user', content: 'session me' }] }, { headers: { 'x-request-id': 'session-log-1' } });
  await client.messages.create({ model: 'homelab/code', max_tokens: 10, metadata: { user_id: `user_${'a'.repeat(64)}_account__session_${session}` }, messages: [{ role: 'user', content: 'legacy' }] }, { headers: { 'x-request-id': 'session-log-2' } });
  const bad = await postJson(lab.base + '/v1/messages/count_tokens', { model: 'homelab/chat' }, { 'x-request-id': 'count-log-bad' });
  assert.equal(bad.json.type, 'error');
  for (const r of up.received.slice(before)) assert.ok(!JSON.stringify(r.body).includes(session), 'the session id goes to no upstream');
  lab.svc.logs.flush();
  const lines = await pollUntil('decision lines', () => {
    const all = readJsonLines(`${lab.logDir}/router-decisions.jsonl`);
    const want = ['count-log-1', 'session-log-1', 'session-log-2', 'count-log-bad'].map((id) => all.find((l) => l.request_id === id));
    return want.every(Boolean) ? want : undefined;
  }, { everyMs: 10 });
  const [count, json, legacy, badCount] = lines;
  assert.equal(count.endpoint, 'count_tokens');
  assert.equal(count.status, 200);
  assert.ok(count.route, 'the route it would take');
  assert.equal(count.session, session);
  assert.equal(json.endpoint, 'messages');
  assert.equal(json.session, session);
  assert.equal(legacy.session, session);
  assert.equal(badCount.endpoint, 'count_tokens');
  assert.equal(badCount.status, 400);
  assert.equal(badCount.error, 'invalid_request');
  assert.equal(badCount.session, undefined);
});

test('thinking reaches a route only as its thinking key says: chat_template_kwargs, reasoning_effort, or not at all (default off)', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'ok' }) });
  const ask = async (model: string, thinking?: { type: 'enabled'; budget_tokens: number } | { type: 'disabled' }) => {
    const { response } = await client.messages.create({ model, max_tokens: 20000, messages: [{ role: 'user', content: 'think' }], ...(thinking ? { thinking } : {}) }).withResponse();
    return { route: response.headers.get('x-homelab-route'), sent: lastChat() };
  };
  const qwen = await ask('homelab/code', { type: 'enabled', budget_tokens: 10000 });
  assert.equal(qwen.route, 'ubuntu-6000');
  assert.deepEqual(qwen.sent.chat_template_kwargs, { enable_thinking: true });
  assert.equal('thinking' in qwen.sent, false);
  assert.equal('reasoning_effort' in qwen.sent, false);
  const qwenOff = await ask('homelab/code');
  assert.deepEqual(qwenOff.sent.chat_template_kwargs, { enable_thinking: false }, 'not asked: the template is told not to think');
  const effort = await ask('homelab/fast', { type: 'enabled', budget_tokens: 1024 });
  assert.equal(effort.route, 'ubuntu-4090');
  assert.equal(effort.sent.reasoning_effort, 'low');
  assert.equal('chat_template_kwargs' in effort.sent, false);
  const effortOff = await ask('homelab/fast', { type: 'disabled' });
  assert.equal('reasoning_effort' in effortOff.sent, false);
  const plain = await ask('homelab/chat', { type: 'enabled', budget_tokens: 10000 });
  assert.equal(plain.route, 'win-5090');
  for (const k of ['thinking', 'chat_template_kwargs', 'reasoning_effort']) assert.equal(k in plain.sent, false, `${k} not sent by default`);
});
