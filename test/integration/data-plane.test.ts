// The OpenAI-compatible surface, driven by the clients people actually point at it: the
// official openai SDK and the Vercel AI SDK's openai-compatible provider (what OpenCode uses).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, jsonSchema, streamText, tool } from 'ai';
import { startLab, leftovers, postJson, readJsonLines, type Lab } from '../helpers/lab.ts';

let lab: Lab;
let client: OpenAI;

before(async () => {
  lab = await startLab({ sim: { 'ubuntu-6000': { chunks: 12 } } });
  client = new OpenAI({ baseURL: lab.url, apiKey: 'unused', maxRetries: 0 });
});
after(() => lab.close());

function resetSims(): void {
  for (const s of Object.values(lab.sims)) s.resetStats();
}

test('openai SDK – non-stream: routed by content, served model name upstream, response relayed unchanged', async () => {
  resetSims();
  const { data, response } = await client.chat.completions
    .create({ model: 'homelab/auto', messages: [{ role: 'user', content: 'Refactor this FastAPI endpoint and add pytest tests' }] })
    .withResponse();
  assert.equal(response.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.equal(response.headers.get('x-homelab-bucket'), 'coding');
  assert.equal(response.headers.get('x-homelab-reason'), 'bucket_match');
  assert.equal(response.headers.get('x-homelab-fallback-path'), 'ubuntu-6000');
  assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(data.model, 'glm-4.5-air-awq', 'the upstream body is relayed unchanged');
  assert.match(data.choices[0]!.message.content ?? '', /^\[glm-4\.5-air-awq\]/);
  assert.ok(data.usage && data.usage.completion_tokens > 0);
  const seen = lab.sims['ubuntu-6000']!.received;
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.body.model, 'glm-4.5-air-awq', 'the upstream saw the served model name, not homelab/auto');
  assert.deepEqual(seen[0]!.body.messages, [{ role: 'user', content: 'Refactor this FastAPI endpoint and add pytest tests' }]);
  assert.deepEqual(leftovers(lab), {});
});

test('openai SDK – stream: every chunk in order, [DONE] relayed, usage captured', async () => {
  resetSims();
  const stream = await client.chat.completions.create({
    model: 'homelab/auto',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Implement a python function that parses ISO dates' }],
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  const direct = await fetch(lab.sims['ubuntu-6000']!.url + '/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'glm-4.5-air-awq', stream: true, messages: [{ role: 'user', content: 'Implement a python function that parses ISO dates' }] }),
  });
  const directEvents = (await direct.text()).split('\n\n').filter((e) => e.startsWith('data: {'));
  assert.equal(chunks.length, directEvents.length + 1, 'one chunk per upstream event, plus the usage chunk');
  const directContent = directEvents.map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, directContent, 'content arrives complete and in order');
  assert.ok(chunks.every((c) => c.model === 'glm-4.5-air-awq'));
  assert.ok(chunks.at(-1)!.usage, 'the usage chunk is relayed');
  assert.equal(lab.sims['ubuntu-6000']!.received[0]!.body.stream, true);
  assert.deepEqual(leftovers(lab), {});
  lab.svc.logs.flush();
});

test('raw SSE – events relayed byte for byte, SSE headers set, hop-by-hop headers not copied', async () => {
  const res = await fetch(lab.url + '/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'trace-123' },
    body: JSON.stringify({ model: 'homelab/chat', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.equal(res.headers.get('x-request-id'), 'trace-123');
  assert.equal(res.headers.get('x-homelab-reason'), 'pinned_model');
  const text = await res.text();
  assert.ok(text.endsWith('data: [DONE]\n\n'));
  assert.ok(!text.includes('event: error'));
  assert.equal(lab.sims['win-5090']!.received.at(-1)!.headers['x-request-id'], 'trace-123', 'the request id travels upstream');
});

test('AI SDK openai-compatible provider – generateText and streamText', async () => {
  resetSims();
  const homelab = createOpenAICompatible({ name: 'homelab', baseURL: lab.url, apiKey: 'unused' });
  const generated = await generateText({ model: homelab('homelab/auto'), prompt: 'Tell me a joke about penguins', maxRetries: 0 });
  assert.match(generated.text, /^\[gemma-4-31b\]/);
  const streamed = streamText({ model: homelab('homelab/code'), prompt: 'write a bash script', maxRetries: 0 });
  let text = '';
  for await (const part of streamed.textStream) text += part;
  assert.match(text, /^\[glm-4\.5-air-awq\]/);
  assert.equal(lab.sims['win-5090']!.received[0]!.body.model, 'gemma-4-31b');
  assert.equal(lab.sims['ubuntu-6000']!.received[0]!.body.model, 'glm-4.5-air-awq');
  assert.deepEqual(leftovers(lab), {});
});

test('the upstream gets the client\'s JSON as written, only the model replaced (a 20-digit seed keeps its digits)', async () => {
  resetSims();
  const sent = '{"model":"homelab/code","seed":12345678901234567890,"top_p":1e-1,"messages":[{"role":"user","content":"say \\"model\\": hi"}],"metadata":{"model":"mine"}}';
  const res = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sent });
  assert.equal(res.status, 200);
  await res.text();
  const seen = lab.sims['ubuntu-6000']!.received[0]!;
  assert.equal(seen.raw, sent.replace('"model":"homelab/code"', '"model":"glm-4.5-air-awq"'));
});

test('AI SDK – a request that carries tools is agentic work for ubuntu-6000, tools forwarded intact', async () => {
  resetSims();
  const homelab = createOpenAICompatible({ name: 'homelab', baseURL: lab.url, apiKey: 'unused' });
  const tools = {
    read_file: tool({ description: 'Read a file from the workspace', inputSchema: jsonSchema<{ path: string }>({ type: 'object', properties: { path: { type: 'string' } }, required: ['path'] }) }),
  };
  const result = streamText({ model: homelab('homelab/auto'), prompt: 'do it', tools, maxRetries: 0 });
  // The simulator answers a tools request with a streamed tool call, as a model would.
  const calls = await result.toolCalls;
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.toolName, 'read_file');
  assert.equal(typeof (calls[0]!.input as { path?: unknown }).path, 'string');
  assert.equal((await result.response).modelId, 'glm-4.5-air-awq');
  const seen = lab.sims['ubuntu-6000']!.received[0]!.body;
  assert.equal(seen.tools[0].function.name, 'read_file');
  assert.deepEqual(seen.tools[0].function.parameters.required, ['path']);
});

test('openai SDK – tools on a non-stream request; pinned alias; header override', async () => {
  resetSims();
  const tools = [{ type: 'function' as const, function: { name: 'run_tests', parameters: { type: 'object', properties: {} } } }];
  const { response } = await client.chat.completions.create({ model: 'homelab/auto', tools, messages: [{ role: 'user', content: 'go on' }] }).withResponse();
  assert.equal(response.headers.get('x-homelab-route'), 'ubuntu-6000');
  const pinned = await client.chat.completions.create({ model: 'homelab/reasoning', messages: [{ role: 'user', content: 'tell me a joke' }] }).withResponse();
  assert.equal(pinned.response.headers.get('x-homelab-route'), 'spark');
  assert.equal(pinned.response.headers.get('x-homelab-reason'), 'pinned_model');
  const header = await client.chat.completions.create({ model: 'homelab/auto', messages: [{ role: 'user', content: 'tell me a joke' }] }, { headers: { 'x-homelab-route': 'ubuntu-4090' } }).withResponse();
  assert.equal(header.response.headers.get('x-homelab-route'), 'ubuntu-4090');
  assert.equal(header.response.headers.get('x-homelab-reason'), 'header_route');
});

test('an image goes to the vision route, never a blind one', async () => {
  resetSims();
  const { response } = await client.chat.completions
    .create({ model: 'homelab/chat', messages: [{ role: 'user', content: [{ type: 'text', text: 'what does this sign say?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] })
    .withResponse();
  assert.equal(response.headers.get('x-homelab-route'), 'ubuntu-4090');
  assert.equal(response.headers.get('x-homelab-reason'), 'image');
  assert.equal(lab.sims['win-5090']!.received.length, 0);
});

test('GET /v1/models lists homelab/auto, every alias and each served model', async () => {
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  for (const id of ['homelab/auto', 'homelab/vision', 'homelab/fast', 'homelab/code', 'homelab/agent', 'homelab/reasoning', 'homelab/review', 'homelab/chat', 'homelab/utility', 'homelab/gemma', 'qwen2.5-vl-7b-router-awq', 'glm-4.5-air-awq', 'qwen3.6-35b-a3b-fp8', 'gemma-4-31b']) {
    assert.ok(ids.includes(id), `${id} listed`);
  }
});

test('POST /v1/route/explain answers the decision and calls nothing', async () => {
  resetSims();
  const r = await postJson(lab.url + '/route/explain', { model: 'homelab/auto', messages: [{ role: 'user', content: 'Compare event sourcing with CRUD. What are the trade-offs?' }] });
  assert.equal(r.status, 200);
  for (const key of ['route', 'bucket', 'reason', 'scores', 'matched', 'has_image', 'estimated_tokens', 'size_tier', 'fallback_chain']) assert.ok(key in r.json, key);
  assert.equal(r.json.route, 'spark');
  assert.equal(r.json.bucket, 'reasoning');
  assert.equal(typeof r.json.scores.reasoning, 'number');
  assert.deepEqual(r.json.fallback_chain, { busy: [], outage: [] });
  assert.equal(Object.values(lab.sims).reduce((n, s) => n + s.received.length, 0), 0);
  const drained = lab.svc.states.get('ubuntu-6000')!;
  drained.drained = true;
  const e = await postJson(lab.url + '/route/explain', { model: 'homelab/auto', messages: [{ role: 'user', content: 'Refactor this python class' }] });
  drained.drained = false;
  assert.equal(e.json.route, 'win-5090', 'explain applies drain, like a real request would');
  assert.equal(e.json.reason, 'ubuntu-6000_drained');
});

test('embeddings – no route declares embeddings in the shipped policy: a clear 404', async () => {
  const r = await postJson(lab.url + '/embeddings', { model: 'homelab/auto', input: 'hello' });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'model_not_found');
  assert.match(r.json.error.message, /embeddings: true/);
});

test('healthz and readyz', async () => {
  assert.equal((await fetch(lab.base + '/healthz')).status, 200);
  const ready = await fetch(lab.base + '/readyz');
  assert.equal(ready.status, 200);
  assert.deepEqual(((await ready.json()) as any).healthy_routes.sort(), ['spark', 'ubuntu-4090', 'ubuntu-6000', 'win-5090']);
});

test('router-decisions.jsonl – one line per request, no prompt text', async () => {
  const r = await postJson(lab.url + '/chat/completions', { model: 'homelab/auto', messages: [{ role: 'user', content: 'SECRET-PROMPT tell me a joke' }] }, { 'x-request-id': 'log-check-1' });
  assert.equal(r.status, 200);
  lab.svc.logs.flush();
  let line: any;
  for (let i = 0; i < 100 && !line; i++) {
    line = readJsonLines(`${lab.logDir}/router-decisions.jsonl`).find((l) => l.request_id === 'log-check-1');
    if (!line) await new Promise((res) => setTimeout(res, 10));
  }
  assert.ok(line, 'decision line written');
  assert.equal(line.route, 'win-5090');
  assert.equal(line.bucket, 'general_chat');
  assert.equal(line.status, 200);
  assert.equal(line.fallback_path, 'win-5090');
  assert.ok(line.tokens.completion > 0);
  assert.equal(typeof line.latency_ms, 'number');
  const all = JSON.stringify(readJsonLines(`${lab.logDir}/router-decisions.jsonl`));
  assert.ok(!all.includes('SECRET-PROMPT'), 'prompts are not logged unless the policy asks');
});
