// /v1/responses and /v1/completions with the official openai SDK against the router and a
// scripted chat upstream on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { leftovers, postJson, readJsonLines, startLab, type Lab } from '../helpers/lab.ts';
import { completion, startChatUpstream, type Answer, type ChatUpstream } from '../helpers/chat-upstream.ts';
import { pollUntil } from '../helpers/poll.ts';
import { chatSse, chunk, usageChunk } from '../helpers/sse.ts';

let up: ChatUpstream;
let lab: Lab;
let client: OpenAI;
let next: (body: any, path: string) => Answer = () => ({ kind: 'json', body: completion({ content: 'hello' }) });

before(async () => {
  up = await startChatUpstream((body, path) => next(body, path));
  lab = await startLab({
    edit: (doc) => {
      for (const r of Object.values<any>(doc.routes)) r.url = up.url;
      doc.routes['spark'].native = ['responses', 'completions'];
    },
  });
  client = new OpenAI({ baseURL: lab.url, apiKey: 'test-key', maxRetries: 0 });
});

after(async () => {
  await lab.close();
  await up.close();
});

function lastChat(): any {
  return up.received.filter((r) => r.path === '/v1/chat/completions').at(-1)!.body;
}

test('responses.create: output_text, usage, decision headers; instructions + developer merged into one system message', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'Four.' }, 'stop', { prompt_tokens: 15, completion_tokens: 2 }) });
  const { data, response } = await client.responses
    .create({ model: 'homelab/code', instructions: 'Be exact.', input: [{ role: 'developer', content: 'Answer in one word.' }, { role: 'user', content: 'two plus two?' }], store: false })
    .withResponse();
  assert.equal(data.output_text, 'Four.');
  assert.equal(data.status, 'completed');
  assert.equal(data.usage?.input_tokens, 15);
  assert.equal(data.usage?.output_tokens, 2);
  assert.equal(response.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.deepEqual(lastChat().messages, [{ role: 'system', content: 'Be exact.\n\nAnswer in one word.' }, { role: 'user', content: 'two plus two?' }]);
});

test('responses.stream: the SDK sees the lifecycle and assembles text and a function call', async () => {
  next = () => ({
    kind: 'sse',
    text: chatSse([chunk({ role: 'assistant' }), chunk({ content: 'Let me run it.' }), chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'shell', arguments: '{"command":' } }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: '["ls"]}' } }] }), chunk({}, 'tool_calls'), usageChunk(40, 9)]),
  });
  const stream = client.responses.stream({ model: 'homelab/code', input: 'list files', tools: [{ type: 'function', name: 'shell', parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } } } }, strict: false }] });
  const types: string[] = [];
  stream.on('event', (e) => types.push(e.type));
  const final = await stream.finalResponse();
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
  assert.ok(types.includes('response.output_text.delta') && types.includes('response.function_call_arguments.delta'));
  assert.equal(final.output_text, 'Let me run it.');
  const call = final.output.find((o) => o.type === 'function_call') as any;
  assert.equal(call.call_id, 'call_1');
  assert.equal(call.name, 'shell');
  assert.deepEqual(JSON.parse(call.arguments), { command: ['ls'] });
  assert.equal(final.usage?.total_tokens, 49);
  assert.deepEqual(lastChat().stream_options, { include_usage: true });
  assert.deepEqual(leftovers(lab), {});
});

test('function call round trip: function_call + function_call_output become tool_calls + tool messages', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'There is one file.' }) });
  const r = await client.responses.create({
    model: 'homelab/code',
    input: [
      { role: 'user', content: 'list files' },
      { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' } as any,
      { type: 'function_call', call_id: 'call_1', name: 'shell', arguments: '{"command":["ls"]}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'a.txt' },
    ],
    tools: [{ type: 'function', name: 'shell', parameters: { type: 'object', properties: {} }, strict: false }],
  });
  assert.equal(r.output_text, 'There is one file.');
  const sent = lastChat();
  assert.deepEqual(sent.messages, [
    { role: 'user', content: 'list files' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'shell', arguments: '{"command":["ls"]}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'a.txt' },
  ]);
});

test('an image input routes as an image request', async () => {
  next = () => ({ kind: 'json', body: completion({ content: 'a cat' }) });
  const { response } = await client.responses.create({ model: 'homelab/auto', input: [{ role: 'user', content: [{ type: 'input_text', text: 'what is this?' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'auto' }] }] }).withResponse();
  const route = response.headers.get('x-homelab-route');
  assert.ok(route === 'ubuntu-4090' || route === 'spark', `got ${route}`);
  assert.equal(lastChat().messages[0].content[1].image_url.url, 'data:image/png;base64,AAAA');
});

test('errors: OpenAI envelope; previous_response_id refused; an upstream overflow carries context_length_exceeded', async () => {
  await assert.rejects(client.responses.create({ model: 'homelab/code', input: 'x', previous_response_id: 'resp_123' }), (e: any) => e instanceof OpenAI.BadRequestError && e.param === 'previous_response_id');
  await assert.rejects(client.responses.create({ model: 'nope', input: 'x' }), (e: any) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  next = () => ({ kind: 'json', status: 400, body: { error: { code: 400, message: 'request (40000 tokens) exceeds the available context size (32768 tokens)', type: 'exceed_context_size_error', n_prompt_tokens: 40000, n_ctx: 32768 } } });
  await assert.rejects(client.responses.create({ model: 'homelab/code', input: 'long' }), (e: any) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
});

test('a stream cut mid-way ends with response.failed; no slot leaks', async () => {
  next = () => ({ kind: 'cut', text: chatSse([chunk({ content: 'part' })], { done: false }) });
  const stream = client.responses.stream({ model: 'homelab/code', input: 'go' });
  const types: string[] = [];
  stream.on('event', (e) => types.push(e.type));
  const final = await stream.finalResponse();
  assert.equal(types.at(-1), 'response.failed');
  assert.equal(final.status, 'failed');
  assert.match(final.error!.message, /failed mid-stream/);
  await pollUntil('slots released', () => (Object.keys(leftovers(lab)).length === 0 ? true : undefined));
});

test('native passthrough for responses and completions on a route that declares them', async () => {
  const native = { id: 'resp_native', object: 'response', created_at: 1, status: 'completed', model: 'q', output: [{ type: 'message', id: 'm', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'native!', annotations: [] }] }], usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2 } };
  next = (_b, path) => (path === '/v1/responses' ? { kind: 'json', body: native } : { kind: 'json', body: { id: 'cmpl-n', object: 'text_completion', model: 'q', choices: [{ index: 0, text: 'native text', finish_reason: 'stop' }] } });
  const r = await client.responses.create({ model: 'homelab/reasoning', input: 'hi' });
  assert.equal(r.id, 'resp_native');
  assert.equal(up.received.at(-1)!.path, '/v1/responses');
  assert.equal(up.received.at(-1)!.body.model, 'qwen3.6-35b-a3b-fp8');
  const c = await client.completions.create({ model: 'homelab/reasoning', prompt: 'Once', max_tokens: 5 });
  assert.equal(c.choices[0]!.text, 'native text');
  assert.equal(up.received.at(-1)!.path, '/v1/completions');
});

test('fail-closed camera bucket: a Responses json_schema answer is validated; invalid twice → the synthetic envelope, in Responses shape', async () => {
  const schema = { type: 'object', properties: { person: { type: 'boolean' } }, required: ['person'], additionalProperties: false };
  const ask = { model: 'homelab/auto', input: 'Frigate event: motion detected on the driveway camera. Is there a person? Answer as JSON.', text: { format: { type: 'json_schema' as const, name: 'camera_event', schema, strict: true } } };
  next = () => ({ kind: 'json', body: completion({ content: '{"person":true}' }) });
  const ok = await client.responses.create({ ...ask, stream: false }).withResponse();
  assert.equal(ok.data.output_text, '{"person":true}');
  assert.equal(ok.response.headers.get('x-homelab-bucket'), 'camera');
  assert.equal(lastChat().stream, false, 'validated answers are never streamed upstream');
  assert.deepEqual(lastChat().response_format.json_schema.schema, schema);
  next = () => ({ kind: 'json', body: completion({ content: 'I think so, yes.' }) });
  const before = up.received.length;
  const bad = await client.responses.create({ ...ask, stream: false }).withResponse();
  assert.equal(bad.response.headers.get('x-homelab-synthetic'), '1');
  assert.equal(JSON.parse(bad.data.output_text).escalate_to_spark, true);
  assert.equal(up.received.length - before, 2, 'the primary, then the escalation route');
  // A client that asked for a stream gets the checked answer as a Responses stream.
  const stream = client.responses.stream(ask);
  const final = await stream.finalResponse();
  assert.equal(JSON.parse(final.output_text).synthetic, true);
  assert.deepEqual(leftovers(lab), {});
});

test('legacy completions translated to chat: non-stream and stream, usage on request, logged', async () => {
  next = (body) => (body.stream ? { kind: 'sse', text: chatSse([chunk({ content: ' upon' }), chunk({ content: ' a time' }), chunk({}, 'length'), usageChunk(2, 3)]) } : { kind: 'json', body: completion({ content: ' upon a time' }, 'length', { prompt_tokens: 2, completion_tokens: 3 }) });
  const c = await client.completions.create({ model: 'homelab/code', prompt: 'Once', max_tokens: 3 }, { headers: { 'x-request-id': 'legacy-1' } });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.choices[0]!.text, ' upon a time');
  assert.equal(c.choices[0]!.finish_reason, 'length');
  assert.deepEqual(lastChat().messages, [{ role: 'user', content: 'Once' }]);
  const s = await client.completions.create({ model: 'homelab/code', prompt: 'Once', max_tokens: 3, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage: any = null;
  for await (const ch of s) {
    if (ch.choices[0]) text += ch.choices[0].text;
    if (ch.usage) usage = ch.usage;
  }
  assert.equal(text, ' upon a time');
  assert.equal(usage.total_tokens, 5);
  const bad = await postJson(lab.url + '/completions', { model: 'homelab/code', prompt: [1, 2, 3] });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'prompt');
  lab.svc.logs.flush();
  const line = await pollUntil('decision line', () => readJsonLines(`${lab.logDir}/router-decisions.jsonl`).find((l) => l.request_id === 'legacy-1'), { everyMs: 10 });
  assert.equal(line.endpoint, 'completions');
  assert.deepEqual(line.tokens, { prompt: 2, completion: 3 });
});
