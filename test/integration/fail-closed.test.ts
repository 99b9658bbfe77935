// Fail-closed buckets (SPEC §5, camera events): a json_schema answer is validated before the
// client sees it; invalid output is retried once on escalate_to; if that fails too the client
// gets a synthetic envelope that says so (header x-homelab-synthetic: 1), never a silent
// "nothing happened". An unavailable primary follows fallback.outage first. A streaming
// request is fetched without streaming, validated, then sent as SSE. Every failure is a line
// in structured-validation.jsonl.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSettled, chat, type ChatBody, labFor, logLines, readToEnd, sdk, send, sseEvents, streamedContent, type Lab, requestFailures } from '../helpers/faults.ts';

const SCHEMA = {
  type: 'object',
  properties: { person: { type: 'boolean' }, summary: { type: 'string' } },
  required: ['person', 'summary'],
  additionalProperties: false,
};

const VALID = JSON.stringify({ person: true, summary: 'a courier at the front door' });
const VALID_FROM_SPARK = JSON.stringify({ person: false, summary: 'a cat on the driveway' });

function cameraEvent(extra: Record<string, unknown> = {}): ChatBody {
  return {
    model: 'homelab/auto',
    messages: [{ role: 'user', content: 'Frigate event: motion detected on the driveway camera. Is there a person? Answer as JSON.' }],
    response_format: { type: 'json_schema', json_schema: { name: 'camera_event', strict: true, schema: SCHEMA } },
    ...extra,
  } as ChatBody;
}

function contentOf(body: any): string {
  return body.choices[0].message.content;
}

function noOtherTraffic(lab: Lab, ...routes: string[]): void {
  for (const r of routes) assert.equal(lab.sims[r]!.received.length, 0, `${r} got traffic`);
}

test('valid JSON from the primary passes unchanged, with no synthetic header and no validation line', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: VALID });

  const { data, response } = await sdk(lab).chat.completions.create(cameraEvent()).withResponse();
  assert.equal(response.headers.get('x-homelab-bucket'), 'camera');
  assert.equal(response.headers.get('x-homelab-route'), 'ubuntu-4090');
  assert.equal(response.headers.get('x-homelab-synthetic'), null);
  assert.equal(data.choices[0].message.content, VALID);
  assert.equal(data.model, 'qwen2.5-vl-7b-router-awq');
  // The upstream is asked for the schema, without streaming.
  const seen = lab.sims['ubuntu-4090']!.received[0]!.body;
  assert.equal(seen.response_format.type, 'json_schema');
  assert.equal(seen.stream, false);
  noOtherTraffic(lab, 'spark', 'win-5090', 'ubuntu-6000');
  assert.deepEqual(await logLines(lab, 'validation'), []);
  await assertSettled(lab);
});

test('invalid output is escalated once to escalate_to, whose valid answer is served', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: 'Sure! There is a person: yes.' });
  lab.sims.spark!.pushFault({ kind: 'reply', content: VALID_FROM_SPARK });

  const r = await chat(lab, cameraEvent(), { 'x-request-id': 'cam-escalated' });
  assert.equal(r.status, 200);
  assert.equal(contentOf(r.json), VALID_FROM_SPARK);
  assert.equal(r.json.model, 'qwen3.6-35b-a3b-fp8');
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-4090>spark');
  assert.equal(r.headers.get('x-homelab-reason'), 'escalated_invalid_json');
  assert.equal(r.headers.get('x-homelab-synthetic'), null);
  assert.equal(lab.sims.spark!.received.length, 1, 'exactly one escalation');
  assert.equal(lab.sims.spark!.received[0]!.body.response_format.type, 'json_schema');

  const lines = await logLines(lab, 'validation');
  assert.equal(lines.length, 1);
  assert.equal(lines[0].request_id, 'cam-escalated');
  assert.equal(lines[0].bucket, 'camera');
  assert.equal(lines[0].route, 'ubuntu-4090');
  assert.equal(lines[0].stage, 'primary');
  assert.equal(lines[0].outcome, 'invalid_json');
  assert.equal(lines[0].action, 'escalate');
  // Invalid output is the model's doing, not an outage: health is untouched.
  assert.equal(lab.svc.states.get('ubuntu-4090')!.health.consecutiveFailures, 0);
  await assertSettled(lab);
});

test('both answers invalid: a synthetic 200 envelope with x-homelab-synthetic: 1, never a suppression', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: '{"person":"maybe"}' });
  lab.sims.spark!.pushFault({ kind: 'reply', content: '{"person":true,"summary":"x","extra":1}' });

  const { data, response } = await sdk(lab).chat.completions.create(cameraEvent()).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-homelab-synthetic'), '1');
  assert.equal(response.headers.get('x-homelab-fallback-path'), 'ubuntu-4090>spark');
  assert.match(response.headers.get('x-homelab-reason') ?? '', /^synthetic_schema_mismatch/);
  const envelope = JSON.parse(data.choices[0]!.message.content ?? '');
  assert.equal(envelope.escalate_to_spark, true);
  assert.equal(envelope.synthetic, true);
  assert.match(envelope.reason, /schema_mismatch/);
  assert.equal(data.choices[0].finish_reason, 'stop');

  const lines = await logLines(lab, 'validation');
  assert.deepEqual(lines.map((l) => [l.stage, l.route, l.outcome, l.action]), [
    ['primary', 'ubuntu-4090', 'schema_mismatch', 'escalate'],
    ['escalation', 'spark', 'schema_mismatch', 'synthetic'],
  ]);
  assert.ok(lines[0].errors.length > 0);
  const decision = (await logLines(lab, 'decisions')).at(-1);
  assert.equal(decision.synthetic, true);
  await assertSettled(lab);
});

test('a primary that is down follows fallback.outage first, and that answer is validated', async (t) => {
  const lab = await labFor(t);
  await lab.sims['ubuntu-4090']!.stop();
  lab.sims.spark!.pushFault({ kind: 'reply', content: VALID_FROM_SPARK });

  const r = await chat(lab, cameraEvent());
  assert.equal(r.status, 200);
  assert.equal(contentOf(r.json), VALID_FROM_SPARK);
  assert.equal(r.headers.get('x-homelab-route'), 'spark');
  assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-4090>spark');
  assert.equal(r.headers.get('x-homelab-reason'), 'ubuntu-4090_outage');
  assert.equal(r.headers.get('x-homelab-synthetic'), null);
  assert.equal(lab.sims.spark!.received.length, 1);
  assert.deepEqual(await logLines(lab, 'validation'), []);
  const failures = requestFailures(await logLines(lab, 'failures'));
  assert.deepEqual(failures.map((f) => [f.route, f.kind]), [['ubuntu-4090', 'refused']]);
  await assertSettled(lab);
});

test('a down primary falls back to spark; an invalid answer there still gets its one escalation, then synthetic', async (t) => {
  const lab = await labFor(t);
  await lab.sims['ubuntu-4090']!.stop();
  // Both of spark's answers ignore the schema (the simulators otherwise answer valid JSON).
  lab.sims.spark!.pushFault({ kind: 'reply', content: 'no json here' }, { kind: 'reply', content: 'still no json' });

  const r = await chat(lab, cameraEvent());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-synthetic'), '1');
  assert.equal(lab.sims.spark!.received.length, 2, 'the outage answer, then the one escalation');
  const lines = await logLines(lab, 'validation');
  assert.deepEqual(lines.map((l) => [l.stage, l.route, l.outcome]), [
    ['primary', 'spark', 'invalid_json'],
    ['escalation', 'spark', 'invalid_json'],
  ]);
  await assertSettled(lab);
});

test('everything down: a synthetic envelope naming the outage, and a validation line saying so', async (t) => {
  const lab = await labFor(t);
  await lab.sims['ubuntu-4090']!.stop();
  await lab.sims.spark!.stop();

  const r = await chat(lab, cameraEvent());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-synthetic'), '1');
  const envelope = JSON.parse(contentOf(r.json));
  assert.deepEqual([envelope.escalate_to_spark, envelope.synthetic], [true, true]);
  assert.match(envelope.reason, /^unavailable/);
  const lines = await logLines(lab, 'validation');
  assert.equal(lines.length, 1, 'spark was already tried on the outage chain, so there is no second attempt');
  assert.equal(lines[0].outcome, 'unavailable');
  assert.equal(lines[0].action, 'synthetic');
  noOtherTraffic(lab, 'win-5090', 'ubuntu-6000');
  await assertSettled(lab);
});

test('invalid primary and escalation target down: synthetic, with both failures logged', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: '[]' });
  await lab.sims.spark!.stop();

  const r = await chat(lab, cameraEvent());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-synthetic'), '1');
  assert.match(JSON.parse(contentOf(r.json)).reason, /^unavailable/);
  const lines = await logLines(lab, 'validation');
  assert.deepEqual(lines.map((l) => [l.stage, l.outcome, l.action]), [
    ['primary', 'schema_mismatch', 'escalate'],
    ['escalation', 'unavailable', 'synthetic'],
  ]);
  await assertSettled(lab);
});

test('a streaming request is fetched without streaming, validated, then sent as SSE', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: VALID });

  const stream = await sdk(lab).chat.completions.create({ ...cameraEvent(), stream: true, stream_options: { include_usage: true } }).withResponse();
  assert.match(stream.response.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.equal(stream.response.headers.get('x-homelab-route'), 'ubuntu-4090');
  let content = '';
  let usage: unknown = null;
  for await (const chunk of stream.data) {
    content += chunk.choices[0]?.delta?.content ?? '';
    usage = chunk.usage ?? usage;
  }
  assert.equal(content, VALID);
  assert.ok(usage, 'stream_options.include_usage is honoured on the rebuilt stream');
  const seen = lab.sims['ubuntu-4090']!.received[0]!.body;
  assert.equal(seen.stream, false);
  assert.equal(seen.stream_options, undefined);
  await assertSettled(lab);
});

test('a streaming request whose answers fail validation gets the synthetic envelope as SSE', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: 'nope' });
  lab.sims.spark!.pushFault({ kind: 'reply', content: 'still nope' });

  const res = await send(lab, cameraEvent({ stream: true }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-homelab-synthetic'), '1');
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const { text } = await readToEnd(res);
  const events = sseEvents(text);
  assert.equal(events.at(-1)!.data, '[DONE]');
  const envelope = JSON.parse(streamedContent(events));
  assert.deepEqual([envelope.escalate_to_spark, envelope.synthetic], [true, true]);
  assert.equal((await logLines(lab, 'validation')).length, 2);
  await assertSettled(lab);
});

test('an upstream 4xx on a fail-closed request passes through unchanged, without escalation', async (t) => {
  const lab = await labFor(t);
  const body = { object: 'error', message: 'response_format: unsupported schema keyword', type: 'BadRequestError', param: null, code: 400 };
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'status', status: 400, body });

  const r = await chat(lab, cameraEvent());
  assert.equal(r.status, 400);
  assert.equal(r.text, JSON.stringify(body));
  assert.equal(r.headers.get('x-homelab-synthetic'), null);
  noOtherTraffic(lab, 'spark');
  await assertSettled(lab);
});

test('a camera request without json_schema is routed normally and not validated', async (t) => {
  const lab = await labFor(t);
  lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: 'not JSON and that is fine' });
  const r = await chat(lab, { ...cameraEvent(), response_format: undefined });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-bucket'), 'camera');
  assert.equal(contentOf(r.json), 'not JSON and that is fine');
  noOtherTraffic(lab, 'spark');
  assert.deepEqual(await logLines(lab, 'validation'), []);
  await assertSettled(lab);
});
