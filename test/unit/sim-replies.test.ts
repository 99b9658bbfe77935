// The simulators answer structured requests as an engine with guided decoding does: JSON the
// requested schema accepts, and tool calls (streamed as OpenAI streams them) for `tools`.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Ajv } from 'ajv';
import { startSimUpstream, type SimOptions } from '../../router/demo/sim-upstream.ts';
import { sampleFor } from '../../router/demo/sim-replies.ts';

const MODEL = 'sim-model';

async function sim(t: TestContext, opts: Partial<SimOptions> = {}) {
  const s = await startSimUpstream({ model: MODEL, ...opts });
  t.after(() => s.close());
  return s;
}

async function post(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...(body as object) }) });
}

const TOOL = {
  type: 'function',
  function: { name: 'open_gate', parameters: { type: 'object', properties: { gate: { type: 'string', enum: ['front', 'back'] }, seconds: { type: 'integer', minimum: 5 } }, required: ['gate', 'seconds'] } },
};

test('sampleFor gives instances the schema accepts', () => {
  const ajv = new Ajv({ strict: false });
  const schemas = [
    { type: 'object', properties: { person: { type: 'boolean' }, summary: { type: 'string', minLength: 20 } }, required: ['person', 'summary'], additionalProperties: false },
    { type: 'object', properties: { tags: { type: 'array', items: { type: 'string' }, minItems: 2 }, score: { type: 'number', minimum: 0.5 }, kind: { enum: ['a', 'b'] }, at: { type: 'string', format: 'date-time' } }, required: ['tags', 'score', 'kind'] },
    { anyOf: [{ type: 'null' }, { type: 'integer' }] },
    { type: ['string', 'null'], maxLength: 3 },
  ];
  for (const schema of schemas) assert.ok(ajv.validate(schema, sampleFor(schema)), JSON.stringify({ schema, instance: sampleFor(schema), errors: ajv.errors }));
});

test('a json_schema request gets JSON the schema accepts', async (t) => {
  const s = await sim(t);
  const schema = { type: 'object', properties: { person: { type: 'boolean' }, summary: { type: 'string' } }, required: ['person', 'summary'], additionalProperties: false };
  const body = (await (await post(s.url, { response_format: { type: 'json_schema', json_schema: { name: 'cam', schema } } })).json()) as any;
  assert.ok(new Ajv().validate(schema, JSON.parse(body.choices[0].message.content)));
  assert.equal(body.choices[0].finish_reason, 'stop');
});

test('a tools request gets a tool call; tool_choice names the tool; "none" gets text', async (t) => {
  const s = await sim(t);
  const body = (await (await post(s.url, { tools: [{ type: 'function', function: { name: 'other', parameters: {} } }, TOOL], tool_choice: { type: 'function', function: { name: 'open_gate' } } })).json()) as any;
  const choice = body.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.match(call.id, /^call_/);
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'open_gate');
  assert.ok(new Ajv().validate(TOOL.function.parameters, JSON.parse(call.function.arguments)));

  const none = (await (await post(s.url, { tools: [TOOL], tool_choice: 'none' })).json()) as any;
  assert.equal(none.choices[0].finish_reason, 'stop');
  assert.match(none.choices[0].message.content, /echo: hi/);
});

test('a streamed tool call: id and name first, then the arguments in pieces, then finish_reason tool_calls', async (t) => {
  const s = await sim(t, { chunks: 4 });
  const text = await (await post(s.url, { tools: [TOOL], stream: true })).text();
  const events = text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  const deltas = chunks.map((c) => c.choices[0]?.delta?.tool_calls?.[0]).filter(Boolean);
  assert.equal(deltas[0].id.startsWith('call_'), true);
  assert.equal(deltas[0].function.name, 'open_gate');
  assert.ok(deltas.length >= 3, 'arguments arrive in several pieces');
  const args = deltas.map((d: any) => d.function.arguments ?? '').join('');
  assert.deepEqual(Object.keys(JSON.parse(args)).sort(), ['gate', 'seconds']);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
});
