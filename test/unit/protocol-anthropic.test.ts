import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnthropicStream, anthropicMessage, type AnswerContext } from '../../router/protocol/anthropic-answer.ts';
import { anthropicToChat } from '../../router/protocol/anthropic-request.ts';
import { anthropicRouterError, anthropicUpstreamError } from '../../router/protocol/errors.ts';
import { RouterError } from '../../router/errors.ts';
import { chatSse, chunk, parseSse, usageChunk } from '../helpers/sse.ts';

const ctx: AnswerContext = { model: 'claude-sonnet-4-5', stopSequences: ['###'], maxTokens: 100, inputEstimate: 42 };

/** Feeds `sse` to a stream in pieces of `step` bytes (frames split anywhere) and returns the events. */
function translate(sse: string, step = 7, end: 'end' | 'fail' = 'end') {
  const s = new AnthropicStream(ctx);
  let out = s.answer.start();
  const bytes = Buffer.from(sse);
  for (let i = 0; i < bytes.length; i += step) out += s.push(bytes.subarray(i, i + step));
  out += end === 'end' ? s.end() : s.fail('boom');
  return parseSse(out);
}

test('text stream: message_start with the prompt estimate, one text block, message_delta with usage, message_stop', () => {
  const ev = translate(chatSse([chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hel' }), chunk({ content: 'lo' }), chunk({}, 'stop'), usageChunk(30, 2)]));
  assert.deepEqual(ev.map((e) => e.event), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.equal(ev[0]!.data.message.usage.input_tokens, 42);
  assert.deepEqual(ev[1]!.data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  assert.equal(ev[2]!.data.delta.text + ev[3]!.data.delta.text, 'Hello');
  assert.equal(ev[5]!.data.delta.stop_reason, 'end_turn');
  assert.equal(ev[5]!.data.usage.output_tokens, 2);
  assert.equal(ev[5]!.data.usage.input_tokens, 30);
});

test('no empty leading text block (LiteLLM #34692): a role-only first chunk opens nothing', () => {
  const ev = translate(chatSse([chunk({ role: 'assistant', content: '' }), chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'Read', arguments: '' } }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: '{"path":' } }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: '"a.txt"}' } }] }), chunk({}, 'tool_calls')]));
  const starts = ev.filter((e) => e.event === 'content_block_start');
  assert.equal(starts.length, 1);
  assert.deepEqual(starts[0]!.data.content_block, { type: 'tool_use', id: 'call_1', name: 'Read', input: {} });
  const json = ev.filter((e) => e.data.delta?.type === 'input_json_delta').map((e) => e.data.delta.partial_json).join('');
  assert.deepEqual(JSON.parse(json), { path: 'a.txt' });
  assert.equal(ev.find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'tool_use');
});

test('stop_reason is tool_use whenever a tool block was emitted, even when finish_reason says stop (Bifrost #3638)', () => {
  const ev = translate(chatSse([chunk({ content: 'Let me look.' }), chunk({ tool_calls: [{ index: 0, id: 'c1', function: { name: 'Bash', arguments: '{"cmd":"ls"}' } }] }), chunk({}, 'stop')]));
  assert.deepEqual(ev.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.type), ['text', 'tool_use']);
  // The text block is closed before the tool block starts: one open block at a time.
  const order = ev.map((e) => `${e.event}:${e.data.index ?? ''}`);
  assert.ok(order.indexOf('content_block_stop:0') < order.indexOf('content_block_start:1'));
  assert.equal(ev.find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'tool_use');
});

test('finish_reason tool_calls with no tool call is end_turn, not a hung tool_use (pi #9681)', () => {
  const ev = translate(chatSse([chunk({ content: 'done' }), chunk({}, 'tool_calls')]));
  assert.equal(ev.find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'end_turn');
});

test('tool arguments that arrive before the name are buffered until the block can open', () => {
  const ev = translate(chatSse([chunk({ tool_calls: [{ index: 0, id: 'c1', function: { arguments: '{"a":' } }] }), chunk({ tool_calls: [{ index: 0, function: { name: 'f', arguments: '1}' } }] }), chunk({}, 'tool_calls')]));
  const start = ev.find((e) => e.event === 'content_block_start')!;
  assert.equal(start.data.content_block.name, 'f');
  assert.equal(ev.filter((e) => e.data.delta?.type === 'input_json_delta').map((e) => e.data.delta.partial_json).join(''), '{"a":1}');
});

test('two parallel tool calls become two tool_use blocks with their own indexes', () => {
  const ev = translate(chatSse([chunk({ tool_calls: [{ index: 0, id: 'a', function: { name: 'f', arguments: '{}' } }] }), chunk({ tool_calls: [{ index: 1, id: 'b', function: { name: 'g', arguments: '{"x":2}' } }] }), chunk({}, 'tool_calls')]));
  const starts = ev.filter((e) => e.event === 'content_block_start');
  assert.deepEqual(starts.map((e) => [e.data.index, e.data.content_block.id]), [[0, 'a'], [1, 'b']]);
  assert.deepEqual(ev.filter((e) => e.event === 'content_block_stop').map((e) => e.data.index), [0, 1]);
});

test('reasoning_content (vLLM) becomes a thinking block before the text, never visible text', () => {
  const ev = translate(chatSse([chunk({ reasoning_content: 'think ' }), chunk({ reasoning_content: 'more' }), chunk({ content: 'answer' }), chunk({}, 'stop')]));
  const starts = ev.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.type);
  assert.deepEqual(starts, ['thinking', 'text']);
  assert.equal(ev.filter((e) => e.data.delta?.type === 'thinking_delta').map((e) => e.data.delta.thinking).join(''), 'think more');
  assert.equal(ev.filter((e) => e.data.delta?.type === 'text_delta').map((e) => e.data.delta.text).join(''), 'answer');
});

test('finish length → max_tokens; vLLM stop_reason naming a stop sequence → stop_sequence', () => {
  assert.equal(translate(chatSse([chunk({ content: 'x' }), chunk({}, 'length')])).find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'max_tokens');
  const d = translate(chatSse([chunk({ content: 'x' }), chunk({}, 'stop', { stop_reason: '###' })])).find((e) => e.event === 'message_delta')!.data.delta;
  assert.deepEqual(d, { stop_reason: 'stop_sequence', stop_sequence: '###' });
});

test('a stream that ends without finish_reason or [DONE] still closes blocks and sends message_stop', () => {
  const ev = translate(chatSse([chunk({ content: 'partial' })], { done: false }));
  assert.deepEqual(ev.slice(-3).map((e) => e.event), ['content_block_stop', 'message_delta', 'message_stop']);
  assert.equal(ev.at(-2)!.data.usage.output_tokens, 2, 'output estimated from the characters when the upstream sent no usage');
});

test('an upstream failure mid-stream ends with an error event in the Anthropic envelope', () => {
  const ev = translate(chatSse([chunk({ content: 'par' })], { done: false }), 5, 'fail');
  assert.equal(ev.at(-1)!.event, 'error');
  assert.equal(ev.at(-1)!.data.type, 'error');
  assert.equal(ev.at(-1)!.data.error.type, 'api_error');
});

test('non-streamed: text, tool_use with an object input, stop_reason and usage with cache reads apart', () => {
  const m = anthropicMessage(
    {
      id: 'x',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 100, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 60 } },
    },
    ctx,
  ) as any;
  assert.deepEqual(m.content, [{ type: 'text', text: 'ok' }, { type: 'tool_use', id: 'c1', name: 'f', input: { a: 1 } }]);
  assert.equal(m.stop_reason, 'tool_use');
  assert.deepEqual(m.usage, { input_tokens: 40, output_tokens: 5, cache_read_input_tokens: 60, cache_creation_input_tokens: 0 });
  assert.equal(m.model, 'claude-sonnet-4-5');
});

test('request: system blocks joined into one leading system message, the billing header dropped', () => {
  const r = anthropicToChat({
    model: 'claude-sonnet-4-5',
    max_tokens: 32000,
    system: [
      { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=sdk-cli; cch=93f1c;' },
      { type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } },
      { type: 'text', text: 'Be brief.' },
    ],
    messages: [{ role: 'user', content: 'hi' }],
    thinking: { type: 'enabled', budget_tokens: 31999 },
    metadata: { user_id: '{"device_id":"d"}' },
    context_management: { edits: [] },
  });
  assert.deepEqual(r.chat.messages[0], { role: 'system', content: 'You are Claude Code.\n\nBe brief.' });
  assert.equal(JSON.stringify(r.chat).includes('billing'), false);
  assert.equal('thinking' in r.chat, false, 'thinking is read, not forwarded to a chat upstream');
  assert.equal('context_management' in r.chat, false);
  assert.deepEqual(r.thinking, { type: 'enabled', budget_tokens: 31999 });
  assert.equal(r.chat.max_tokens, 32000);
});

test('request: tool_result after tool_use becomes a tool message first; its image goes to a user message; is_error is kept', () => {
  const png = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } };
  const r = anthropicToChat({
    model: 'm',
    max_tokens: 10,
    tools: [{ name: 'Read', description: 'read a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } }, { type: 'web_search_20250305', name: 'web_search' }],
    tool_choice: { type: 'any' },
    messages: [
      { role: 'user', content: 'look' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }, { type: 'text', text: 'Reading.' }, { type: 'tool_use', id: 'toolu_1', name: 'Read', input: { path: 'a.png' } }, { type: 'tool_use', id: 'toolu_2', name: 'Read', input: { path: 'b' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'an image' }, png] }, { type: 'tool_result', tool_use_id: 'toolu_2', content: 'no such file', is_error: true }, { type: 'text', text: 'what is it?' }] },
    ],
  });
  const m = r.chat.messages;
  assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'tool', 'tool', 'user']);
  assert.equal(m[1]!.content, 'Reading.');
  assert.deepEqual(m[1]!.tool_calls, [{ id: 'toolu_1', type: 'function', function: { name: 'Read', arguments: '{"path":"a.png"}' } }, { id: 'toolu_2', type: 'function', function: { name: 'Read', arguments: '{"path":"b"}' } }]);
  assert.deepEqual(m[2], { role: 'tool', tool_call_id: 'toolu_1', content: 'an image' });
  assert.deepEqual(m[3], { role: 'tool', tool_call_id: 'toolu_2', content: 'ERROR: no such file' });
  assert.deepEqual(m[4]!.content, [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } }, { type: 'text', text: 'what is it?' }]);
  assert.equal(r.chat.tools!.length, 1, 'server tools without input_schema are dropped');
  assert.equal(r.chat.tool_choice, 'required');
  assert.equal(JSON.stringify(m).includes('hmm'), false, 'thinking history never becomes text');
});

test('request: a system message inside messages (Claude Code sends one) joins the one leading system message', () => {
  const r = anthropicToChat({ model: 'm', max_tokens: 5, system: 'A', messages: [{ role: 'user', content: 'hi' }, { role: 'system', content: [{ type: 'text', text: 'B' }] }, { role: 'user', content: 'again' }] });
  assert.deepEqual(r.chat.messages, [{ role: 'system', content: 'A\n\nB' }, { role: 'user', content: 'hi' }, { role: 'user', content: 'again' }]);
});

test('request: bad input names the field', () => {
  assert.throws(() => anthropicToChat({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), /max_tokens/);
  assert.throws(() => anthropicToChat({ model: 'm', max_tokens: 5, messages: [{ role: 'tool', content: 'x' }] }), /messages\[0\]\.role/);
  assert.throws(() => anthropicToChat({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }), /source\.type/);
});

test('errors: the Anthropic envelope; busy is 529 overloaded_error; an upstream overflow is "prompt is too long"', () => {
  const busy = anthropicRouterError(new RouterError('upstream_saturated', 'all busy', { retryAfterS: 2 }));
  assert.equal(busy.status, 529);
  assert.deepEqual(JSON.parse(busy.body), { type: 'error', error: { type: 'overloaded_error', message: 'all busy' } });
  const vllm = anthropicUpstreamError(400, Buffer.from(JSON.stringify({ object: 'error', message: "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens (35000 in the messages, 5000 in the completion).", type: 'BadRequestError', code: 400 })));
  assert.deepEqual(JSON.parse(vllm.body), { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 40000 tokens > 32768 maximum' } });
  const llama = anthropicUpstreamError(400, Buffer.from(JSON.stringify({ error: { code: 400, message: 'request (4476 tokens) exceeds the available context size (4096 tokens)', type: 'exceed_context_size_error', n_prompt_tokens: 4476, n_ctx: 4096 } })));
  assert.equal(JSON.parse(llama.body).error.message, 'prompt is too long: 4476 tokens > 4096 maximum');
  const other = anthropicUpstreamError(404, Buffer.from('{"error":{"message":"no such model"}}'));
  assert.deepEqual(JSON.parse(other.body), { type: 'error', error: { type: 'not_found_error', message: 'no such model' } });
});

test('request: a tool call without a result gets a placeholder, a result without a call becomes user text (codex #7051)', () => {
  const r = anthropicToChat({
    model: 'm',
    max_tokens: 10,
    messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'f', input: {} }, { type: 'tool_use', id: 'b', name: 'f', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'a', content: 'ok' }, { type: 'tool_result', tool_use_id: 'zzz', content: 'orphan' }] },
    ],
  });
  assert.deepEqual(r.chat.messages.slice(2), [
    { role: 'tool', tool_call_id: 'a', content: 'ok' },
    { role: 'tool', tool_call_id: 'b', content: '(no result: the tool call was interrupted)' },
    { role: 'user', content: 'Tool result (zzz): orphan' },
  ]);
});

test('error envelopes: one rule by path; Anthropic types for every status the router answers with', async () => {
  const { envelopeFor, renderError } = await import('../../router/http/envelope.ts');
  const { RouterError } = await import('../../router/errors.ts');
  assert.equal(envelopeFor('/v1/messages'), 'anthropic');
  assert.equal(envelopeFor('/v1/messages/count_tokens?beta=true'), 'anthropic');
  assert.equal(envelopeFor('/v1/messages?beta=true'), 'anthropic');
  assert.equal(envelopeFor('/v1/messagesX'), 'openai');
  assert.equal(envelopeFor('/v1/responses'), 'openai');
  assert.equal(envelopeFor('/v1/completions'), 'openai');
  const cases: Array<[ConstructorParameters<typeof RouterError>[0], number, string]> = [
    ['invalid_request', 400, 'invalid_request_error'],
    ['invalid_api_key', 401, 'authentication_error'],
    ['model_not_allowed', 403, 'permission_error'],
    ['model_not_found', 404, 'not_found_error'],
    ['method_not_allowed', 405, 'invalid_request_error'],
    ['payload_too_large', 413, 'request_too_large'],
    ['rate_limited', 429, 'rate_limit_error'],
    ['budget_exceeded', 429, 'rate_limit_error'],
    ['internal_error', 500, 'api_error'],
    ['upstream_error', 502, 'api_error'],
    ['upstream_unavailable', 503, 'overloaded_error'],
    ['upstream_saturated', 529, 'overloaded_error'],
  ];
  for (const [code, status, type] of cases) {
    const r = renderError('anthropic', new RouterError(code, 'm'));
    assert.equal(r.status, status, code);
    assert.deepEqual(JSON.parse(r.body), { type: 'error', error: { type, message: 'm' } }, code);
  }
  assert.deepEqual(JSON.parse(renderError('openai', new RouterError('rate_limited', 'm')).body), { error: { message: 'm', type: 'rate_limit_error', code: 'rate_limited', param: null } });
});

test('Claude Code session id: the header first, else metadata.user_id (JSON or legacy); unsafe ids are not kept', async () => {
  const { claudeCodeSession } = await import('../../router/protocol/session.ts');
  const sid = '54c1eb09-bc4c-4d2f-98eb-6d2ab2d5e2fe';
  assert.equal(claudeCodeSession(sid, JSON.stringify({ session_id: 'other' })), sid);
  assert.equal(claudeCodeSession(undefined, JSON.stringify({ device_id: 'd', account_uuid: '', session_id: sid })), sid);
  assert.equal(claudeCodeSession(undefined, `user_${'a'.repeat(64)}_account__session_${sid}`), sid);
  assert.equal(claudeCodeSession(undefined, 'someone@example.com'), undefined);
  assert.equal(claudeCodeSession(undefined, '{"session_id":"a b\\n"}'), undefined);
  assert.equal(claudeCodeSession(undefined, '{not json'), undefined);
  assert.equal(claudeCodeSession('x'.repeat(200), undefined), undefined);
  assert.equal(claudeCodeSession(undefined, undefined), undefined);
});

test('thinking passthrough: fields per route mode; off sends nothing', async () => {
  const { thinkingFields, effortFor } = await import('../../router/protocol/thinking.ts');
  const on = { type: 'enabled', budget_tokens: 31999 };
  assert.deepEqual(thinkingFields('off', on), {});
  assert.deepEqual(thinkingFields(undefined, on), {});
  assert.deepEqual(thinkingFields('chat_template_kwargs', on, { foo: 1 }), { chat_template_kwargs: { foo: 1, enable_thinking: true } });
  assert.deepEqual(thinkingFields('chat_template_kwargs', null), { chat_template_kwargs: { enable_thinking: false } });
  assert.deepEqual(thinkingFields('chat_template_kwargs', { type: 'disabled' }), { chat_template_kwargs: { enable_thinking: false } });
  assert.deepEqual(thinkingFields('reasoning_effort', on), { reasoning_effort: 'high' });
  assert.deepEqual(thinkingFields('reasoning_effort', { type: 'adaptive' }), { reasoning_effort: 'high' });
  assert.deepEqual(thinkingFields('reasoning_effort', { type: 'disabled' }), {});
  assert.deepEqual([effortFor(1024), effortFor(4096), effortFor(16383), effortFor(16384)], ['low', 'medium', 'medium', 'high']);
});
