import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponsesStream, responsesObject, type ResponsesContext } from '../../router/protocol/responses-answer.ts';
import { responsesToChat } from '../../router/protocol/responses-request.ts';
import { CompletionsStream, completionsObject, completionsToChat } from '../../router/protocol/completions.ts';
import { openaiUpstreamError } from '../../router/protocol/errors.ts';
import { sanitizeSchema } from '../../router/protocol/tool-schema.ts';
import { chatSse, chunk, parseSse, usageChunk } from '../helpers/sse.ts';

const ctx = (): ResponsesContext => ({ model: 'gpt-5-codex', maxTokens: 0, inputEstimate: 9, toolNames: new Map([['mcp__read', { namespace: 'mcp', name: 'read' }]]), echo: { tools: [] } });

function translate(sse: string, step = 11) {
  const s = new ResponsesStream(ctx());
  let out = s.answer.start();
  const bytes = Buffer.from(sse);
  for (let i = 0; i < bytes.length; i += step) out += s.push(bytes.subarray(i, i + step));
  out += s.end();
  return parseSse(out);
}

test('text stream: the whole lifecycle Codex waits for, with sequence numbers and a full response.completed', () => {
  const ev = translate(chatSse([chunk({ role: 'assistant' }), chunk({ content: 'Hi ' }), chunk({ content: 'there' }), chunk({}, 'stop'), usageChunk(12, 2)]));
  assert.deepEqual(ev.map((e) => e.event), [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.delta',
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ]);
  ev.forEach((e, i) => {
    assert.equal(e.data.sequence_number, i);
    assert.equal(e.data.type, e.event);
  });
  const done = ev.at(-1)!.data.response;
  assert.equal(done.status, 'completed');
  assert.equal(done.model, 'gpt-5-codex');
  assert.equal(done.output[0].content[0].text, 'Hi there');
  assert.deepEqual(done.usage, { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 2, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 14 });
  assert.equal(ev[4]!.data.item_id, done.output[0].id);
});

test('function calls: output_item.added, arguments deltas and done, namespaced names restored', () => {
  const ev = translate(chatSse([chunk({ content: 'Checking.' }), chunk({ tool_calls: [{ index: 0, id: 'call_9', function: { name: 'mcp__read', arguments: '{"p":' } }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }), chunk({}, 'tool_calls')]));
  const added = ev.filter((e) => e.event === 'response.output_item.added').map((e) => e.data.item.type);
  assert.deepEqual(added, ['message', 'function_call']);
  const args = ev.filter((e) => e.event === 'response.function_call_arguments.delta').map((e) => e.data.delta).join('');
  assert.equal(args, '{"p":1}');
  const argsDone = ev.find((e) => e.event === 'response.function_call_arguments.done')!.data;
  assert.equal(argsDone.arguments, '{"p":1}');
  const out = ev.at(-1)!.data.response.output;
  assert.deepEqual({ ...out[1], id: undefined }, { type: 'function_call', id: undefined, status: 'completed', call_id: 'call_9', name: 'read', namespace: 'mcp', arguments: '{"p":1}' });
  // The message item was done before the function call item was added.
  const names = ev.map((e) => e.event);
  assert.ok(names.indexOf('response.output_item.done') < names.lastIndexOf('response.output_item.added'));
});

test('reasoning_content becomes a reasoning item ahead of the message', () => {
  const ev = translate(chatSse([chunk({ reasoning_content: 'plan' }), chunk({ content: 'ok' }), chunk({}, 'stop')]));
  const out = ev.at(-1)!.data.response.output;
  assert.deepEqual(out.map((o: any) => o.type), ['reasoning', 'message']);
  assert.equal(out[0].content[0].text, 'plan');
  assert.ok(ev.some((e) => e.event === 'response.reasoning_text.delta'));
});

test('a stream cut before finish_reason and [DONE] still ends with .done events and response.completed (CLIProxyAPI #4860)', () => {
  const ev = translate(chatSse([chunk({ content: 'par' })], { done: false }));
  assert.deepEqual(ev.slice(-4).map((e) => e.event), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
});

test('length → response.incomplete with max_output_tokens', () => {
  const ev = translate(chatSse([chunk({ content: 'x' }), chunk({}, 'length')]));
  assert.equal(ev.at(-1)!.event, 'response.incomplete');
  assert.deepEqual(ev.at(-1)!.data.response.incomplete_details, { reason: 'max_output_tokens' });
});

test('custom (free-form) tools such as apply_patch: wrapped as a function upstream, unwrapped to custom_tool_call on output', () => {
  const req = responsesToChat({
    model: 'm',
    input: [
      { role: 'user', content: 'fix it' },
      { type: 'custom_tool_call', call_id: 'c0', name: 'apply_patch', input: '*** Begin Patch\n*** End Patch' },
      { type: 'custom_tool_call_output', call_id: 'c0', output: 'Done!' },
    ],
    tools: [{ type: 'custom', name: 'apply_patch', description: 'patch files', format: { type: 'grammar', syntax: 'lark', definition: 'start: x' } }],
  });
  assert.deepEqual((req.chat.tools as any[])[0].function.parameters, { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] });
  assert.deepEqual((req.chat.messages[1]!.tool_calls as any[])[0].function, { name: 'apply_patch', arguments: JSON.stringify({ input: '*** Begin Patch\n*** End Patch' }) });
  assert.deepEqual(req.chat.messages[2], { role: 'tool', tool_call_id: 'c0', content: 'Done!' });
  const s = new ResponsesStream({ ...ctx(), customTools: req.customTools });
  const args = JSON.stringify({ input: '*** Begin Patch\n+x\n*** End Patch' });
  const ev = parseSse(s.answer.start() + s.push(Buffer.from(chatSse([chunk({ tool_calls: [{ index: 0, id: 'c1', function: { name: 'apply_patch', arguments: args.slice(0, 10) } }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(10) } }] }), chunk({}, 'tool_calls')]))) + s.end());
  assert.equal(ev.find((e) => e.event === 'response.output_item.added')!.data.item.type, 'custom_tool_call');
  assert.equal(ev.find((e) => e.event === 'response.custom_tool_call_input.done')!.data.input, '*** Begin Patch\n+x\n*** End Patch');
  assert.equal(ev.some((e) => e.event?.startsWith('response.function_call_arguments')), false);
  const item = ev.at(-1)!.data.response.output[0];
  assert.deepEqual({ ...item, id: undefined }, { type: 'custom_tool_call', id: undefined, status: 'completed', call_id: 'c1', name: 'apply_patch', input: '*** Begin Patch\n+x\n*** End Patch' });
});

test('non-streamed response object', () => {
  const r = responsesObject({ choices: [{ message: { content: 'yes', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 3, completion_tokens: 4 } }, ctx()) as any;
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.deepEqual(r.output.map((o: any) => o.type), ['message', 'function_call']);
  assert.equal(r.usage.total_tokens, 7);
});

test('request: instructions and developer/system items merge into one leading system message; calls pair with outputs', () => {
  const r = responsesToChat({
    model: 'gpt-5-codex',
    instructions: 'You are Codex.',
    store: false,
    include: ['reasoning.encrypted_content'],
    reasoning: { summary: 'auto' },
    input: [
      { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'Sandbox: none.' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'list files' }] },
      { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'zzz' },
      { type: 'function_call', call_id: 'c1', name: 'shell', arguments: '{"cmd":["ls"]}' },
      { type: 'function_call', call_id: 'c2', name: 'read', namespace: 'mcp', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c1', output: 'a.txt' },
      { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'shot' }, { type: 'input_image', image_url: 'data:image/png;base64,AA' }] },
      { role: 'user', content: 'and now?' },
    ],
    tools: [{ type: 'function', name: 'shell', parameters: { type: 'object', properties: {} } }, { type: 'namespace', name: 'mcp', tools: [{ type: 'function', name: 'read', parameters: { type: 'object' } }] }, { type: 'web_search' }],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    stream: true,
  });
  const m = r.chat.messages;
  assert.deepEqual(m.map((x) => x.role), ['system', 'user', 'assistant', 'tool', 'tool', 'user', 'user']);
  assert.equal(m[0]!.content, 'You are Codex.\n\nSandbox: none.');
  assert.deepEqual((m[2]!.tool_calls as any[]).map((c) => c.function.name), ['shell', 'mcp__read']);
  assert.deepEqual(m[5]!.content, [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }]);
  assert.deepEqual((r.chat.tools as any[]).map((t) => t.function.name), ['shell', 'mcp__read']);
  assert.deepEqual(r.chat.stream_options, { include_usage: true });
  assert.deepEqual(r.toolNames.get('mcp__read'), { namespace: 'mcp', name: 'read' });
});

test('request: previous_response_id is refused rather than silently ignored', () => {
  assert.throws(() => responsesToChat({ model: 'm', input: 'x', previous_response_id: 'resp_1' }), /previous_response_id/);
});

test('legacy completions: prompt → one user message; answers as text_completion, streamed with [DONE]', () => {
  const r = completionsToChat({ model: 'm', prompt: 'Once upon', max_tokens: 5, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(r.chat.messages, [{ role: 'user', content: 'Once upon' }]);
  const o = completionsObject({ choices: [{ message: { content: ' a time' }, finish_reason: 'length' }], usage: { prompt_tokens: 2, completion_tokens: 5 } }, { model: 'm', includeUsage: false }) as any;
  assert.equal(o.object, 'text_completion');
  assert.equal(o.choices[0].text, ' a time');
  assert.equal(o.choices[0].finish_reason, 'length');
  const s = new CompletionsStream({ model: 'm', includeUsage: true });
  const ev = parseSse(s.push(Buffer.from(chatSse([chunk({ content: ' a' }), chunk({ content: ' time' }), chunk({}, 'stop'), usageChunk(2, 2)]))) + s.end());
  assert.deepEqual(ev.filter((e) => e.data !== '[DONE]' && e.data.choices.length > 0).map((e) => e.data.choices[0].text).join(''), ' a time');
  assert.deepEqual(ev.at(-2)!.data.usage, { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 });
  assert.equal(ev.at(-1)!.data, '[DONE]');
  assert.equal(ev.filter((e) => e.data === '[DONE]').length, 1);
});

test('OpenAI-shaped errors: an upstream overflow gets code context_length_exceeded; others pass as they are', () => {
  const o = JSON.parse(openaiUpstreamError(400, Buffer.from('{"error":{"message":"This model\'s maximum context length is 8192 tokens. However, you requested 9000 tokens","type":"BadRequestError"}}')).body);
  assert.equal(o.error.code, 'context_length_exceeded');
  const raw = '{"error":{"message":"bad temperature","type":"invalid_request_error"}}';
  assert.equal(openaiUpstreamError(400, Buffer.from(raw)).body, raw);
});

test('tools.sanitize strips what grammar engines reject, keeps property names and structure', () => {
  const s = sanitizeSchema({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', propertyNames: { pattern: '^x' }, properties: { format: { type: 'string', format: 'uri', pattern: 'a+', maxLength: 100000 }, n: { type: 'integer', exclusiveMinimum: 0 } }, required: ['format'] });
  assert.deepEqual(s, { type: 'object', properties: { format: { type: 'string' }, n: { type: 'integer', exclusiveMinimum: 0 } }, required: ['format'] });
});

test('request: parallel outputs stay together; an image from the first output follows the whole run', () => {
  const r = responsesToChat({
    model: 'm',
    input: [
      { role: 'user', content: 'shots' },
      { type: 'function_call', call_id: 'a', name: 'shot', arguments: '{}' },
      { type: 'function_call', call_id: 'b', name: 'shot', arguments: '{}' },
      { type: 'function_call_output', call_id: 'a', output: [{ type: 'input_image', image_url: 'data:image/png;base64,AA' }] },
      { type: 'function_call_output', call_id: 'b', output: 'none' },
    ],
  });
  assert.deepEqual(r.chat.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'tool', 'user']);
  assert.deepEqual(r.chat.messages[4]!.content, [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }]);
});
