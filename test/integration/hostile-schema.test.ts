// Hostile JSON Schemas on fail-closed requests (issue 12 item 1, SPEC §5 "Fail-closed
// buckets"). The client's response_format schema is bounded (fail_closed.max_schema_*), and
// compiled and applied off the event loop, so no schema can stall another client or answer 500.
//
// The catastrophic-pattern cases run the router as its own process (`homelab-router serve`):
// a router stuck on a regex would also stop a test running in the same process, so only a
// separate process shows another client being served while the evil request is in flight.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LOG_FILES } from '../../router/obs/logs.ts';
import { MAX_JSON_NESTING } from '../../router/http/body.ts';
import { cliEnv, startServe, type ServeProcess } from '../helpers/cli.ts';
import { assertSettled, chat, labFor, logLines, readJsonLines, type Lab } from '../helpers/faults.ts';
import { startLab } from '../helpers/lab.ts';
import { pollUntil } from '../helpers/poll.ts';

const TOKEN = 'hostile-schema-token-4c1e';
/** The camera bucket (fail_closed: true), whatever the classifier makes of the text. */
const CAMERA = { 'content-type': 'application/json', 'x-homelab-bucket': 'camera' };

function cameraEvent(schema: unknown): Record<string, unknown> {
  return {
    model: 'homelab/auto',
    messages: [{ role: 'user', content: 'Frigate event: motion detected on the driveway camera. Is there a person? Answer as JSON.' }],
    response_format: { type: 'json_schema', json_schema: { name: 'plate', schema } },
  };
}

// ^(a+)+$ backtracks exponentially on a run of a's that ends in something else: with the
// engine built into Node, 30 a's and a "!" hold the thread for minutes.
const EVIL_SCHEMA = { type: 'object', properties: { plate: { type: 'string', pattern: '^(a+)+$' } }, required: ['plate'] };
const EVIL_CONTENT = JSON.stringify({ plate: 'a'.repeat(30) + '!' });

function manyProperties(n: number): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) properties[`field_${i}`] = { type: 'string' };
  return { type: 'object', properties };
}

/** A schema `depth` objects deep, as JSON text: JSON.stringify itself overflows on one this deep. */
function nested(depth: number): RawJson {
  return new RawJson('{"type":"object","properties":{"a":'.repeat(depth) + '{"type":"object"}' + '}}'.repeat(depth));
}

/** JSON text spliced into a request body as it is. */
class RawJson {
  constructor(readonly text: string) {}
}

function requestText(schema: unknown): string {
  if (!(schema instanceof RawJson)) return JSON.stringify(cameraEvent(schema));
  return JSON.stringify(cameraEvent('@schema@')).replace('"@schema@"', schema.text);
}

function noUpstreamCalled(lab: Lab): void {
  for (const [name, sim] of Object.entries(lab.sims)) assert.equal(sim.received.length, 0, `${name} was called`);
}

async function refused(lab: Lab, schema: unknown, bound: RegExp): Promise<void> {
  const r = await chat(lab, requestText(schema), CAMERA);
  assert.equal(r.status, 400, r.text.slice(0, 300));
  assert.equal(r.json.error.code, 'invalid_request');
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.equal(r.json.error.param, 'response_format');
  assert.match(r.json.error.message, /^response_format\.json_schema\.schema: /);
  assert.match(r.json.error.message, bound);
  assert.equal(r.headers.get('x-homelab-bucket'), 'camera');
  noUpstreamCalled(lab);
  await assertSettled(lab);
}

describe('a catastrophic pattern (router in its own process)', () => {
  let lab: Lab;
  let router: ServeProcess;
  let logDir: string;

  before(async () => {
    lab = await startLab();
    const dir = mkdtempSync(join(tmpdir(), 'hr-hostile-'));
    const policyPath = join(dir, 'routing_policy.yaml');
    writeFileSync(policyPath, lab.policyYaml);
    logDir = join(dir, 'logs');
    router = await startServe(['--policy', policyPath, '--listen', '127.0.0.1:0'], cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN, HOMELAB_ROUTER_LOG_DIR: logDir }));
  });
  after(async () => {
    await router?.stop();
    await lab?.close();
  });

  async function upstreams(): Promise<Array<{ route: string; in_flight: number; queued: number }>> {
    const res = await fetch(`${router.base}/admin/upstreams`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(15_000) });
    assert.equal(res.status, 200);
    return ((await res.json()) as { upstreams: Array<{ route: string; in_flight: number; queued: number }> }).upstreams;
  }

  async function assertRouterSettled(): Promise<void> {
    const busy = () => upstreams().then((u) => u.filter((r) => r.in_flight !== 0 || r.queued !== 0));
    await pollUntil('in-flight and queued to return to zero', async () => ((await busy()).length === 0 ? true : undefined), { tries: 200, everyMs: 20 }).catch(() => undefined);
    assert.deepEqual(await busy(), []);
  }

  test('/healthz from another client is answered while the evil request is in flight', async () => {
    for (const sim of Object.values(lab.sims)) sim.resetStats();
    const primary = lab.sims['ubuntu-4090']!;
    const spark = lab.sims.spark!;
    primary.pushFault({ kind: 'reply', content: EVIL_CONTENT });
    // The escalation (the evil answer does not match) parks on spark until the client leaves,
    // so the evil request stays in flight however fast its answer was checked.
    spark.pushFault({ kind: 'hang' });

    const client = new AbortController();
    let evilSettled = false;
    const evil = fetch(`${router.base}/v1/chat/completions`, { method: 'POST', headers: CAMERA, body: JSON.stringify(cameraEvent(EVIL_SCHEMA)), signal: client.signal })
      .then((r) => r.text())
      .catch(() => null)
      .finally(() => (evilSettled = true));

    // The router now holds the evil answer and checks it against the pattern.
    await pollUntil('the primary to send its answer', () => (primary.completed() === 1 ? true : undefined), { tries: 500, everyMs: 10 });
    // Bounded so a router stuck on the regex fails the test instead of hanging it.
    const health = await fetch(`${router.base}/healthz`, { signal: AbortSignal.timeout(15_000) });
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.equal(evilSettled, false, 'the evil request is still in flight when /healthz has been answered');

    // The evil answer was checked and found invalid: one escalation reached spark.
    await spark.waitForRequests(1);
    client.abort();
    await evil;
    await assertRouterSettled();
    assert.equal(primary.received.length, 1);
    assert.deepEqual(primary.received[0]!.body.response_format, cameraEvent(EVIL_SCHEMA).response_format);
    assert.equal(primary.received[0]!.body.stream, false);
    assert.equal(spark.received.length, 1);
    for (const name of ['win-5090', 'ubuntu-6000']) assert.equal(lab.sims[name]!.received.length, 0, `${name} was called`);
  });

  test('an output the pattern rejects is escalated, then answered with the synthetic envelope', async () => {
    for (const sim of Object.values(lab.sims)) sim.resetStats();
    lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: EVIL_CONTENT });
    lab.sims.spark!.pushFault({ kind: 'reply', content: EVIL_CONTENT });

    const res = await fetch(`${router.base}/v1/chat/completions`, { method: 'POST', headers: { ...CAMERA, 'x-request-id': 'evil-pattern' }, body: JSON.stringify(cameraEvent(EVIL_SCHEMA)), signal: AbortSignal.timeout(15_000) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-homelab-synthetic'), '1');
    assert.equal(res.headers.get('x-homelab-fallback-path'), 'ubuntu-4090>spark');
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    const envelope = JSON.parse(body.choices[0]!.message.content);
    assert.deepEqual([envelope.escalate_to_spark, envelope.synthetic], [true, true]);
    assert.match(envelope.reason, /^schema_mismatch: \/plate must match pattern/);
    assert.equal(lab.sims['ubuntu-4090']!.received.length, 1);
    assert.equal(lab.sims.spark!.received.length, 1);
    await assertRouterSettled();

    const path = join(logDir, LOG_FILES.validation);
    const lines = await pollUntil('both validation lines', () => {
      const mine = readJsonLines(path).filter((l) => l.request_id === 'evil-pattern');
      return mine.length === 2 ? mine : undefined;
    }, { tries: 200, everyMs: 20 });
    assert.deepEqual(lines.map((l) => [l.stage, l.route, l.outcome, l.action]), [
      ['primary', 'ubuntu-4090', 'schema_mismatch', 'escalate'],
      ['escalation', 'spark', 'schema_mismatch', 'synthetic'],
    ]);
  });
});

describe('schemas past the bounds, or that could never be checked, get 400 before any upstream', () => {
  test('5,000 properties: 400 naming fail_closed.max_schema_keywords', async (t) => {
    const lab = await labFor(t);
    await refused(lab, manyProperties(5_000), /fail_closed\.max_schema_keywords \(2000 /);
  });

  test('100,000 properties: 400 naming a bound', async (t) => {
    const lab = await labFor(t);
    await refused(lab, manyProperties(100_000), /fail_closed\.max_schema_(keywords|bytes)/);
  });

  test('a 200-deep schema: 400 naming fail_closed.max_schema_depth', async (t) => {
    const lab = await labFor(t);
    await refused(lab, nested(200), /fail_closed\.max_schema_depth \(32 /);
  });

  // So deep that parsing the body alone would hold the event loop (~30 ms): refused before
  // it is parsed, by the body's own nesting bound.
  test('a 20,000-deep schema: 400 naming the body nesting bound, before the body is parsed', async (t) => {
    const lab = await labFor(t);
    const r = await chat(lab, requestText(nested(20_000)), CAMERA);
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.equal(r.json.error.code, 'invalid_request');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.match(r.json.error.message, new RegExp(`nests objects and arrays deeper than ${MAX_JSON_NESTING} levels`));
    noUpstreamCalled(lab);
    await assertSettled(lab);
  });

  test('a schema over 64 KiB: 400 naming fail_closed.max_schema_bytes', async (t) => {
    const lab = await labFor(t);
    await refused(lab, { type: 'object', description: 'x'.repeat(70_000) }, /fail_closed\.max_schema_bytes \(65536 bytes/);
  });

  test('a self-referencing $ref: 400 naming the $ref, never a 500', async (t) => {
    const lab = await labFor(t);
    await refused(lab, { $ref: '#' }, /"\$ref": "#" refers back/);
    await refused(lab, { $ref: '#/definitions/a', definitions: { a: { anyOf: [{ type: 'string' }, { $ref: '#/definitions/b' }] }, b: { allOf: [{ $ref: '#/definitions/a' }] } } }, /"\$ref": "#\/definitions\/a" refers back/);
  });

  test('a pattern the linear-time engine cannot run (lookahead): 400 naming the pattern', async (t) => {
    const lab = await labFor(t);
    await refused(lab, { type: 'string', pattern: '^(?=.*\\d).+$' }, /pattern "\^\(\?=\.\*\\\\d\)\.\+\$" is not supported/);
  });

  test('the bounds come from the policy: a lower fail_closed.max_schema_keywords refuses a small schema', async (t) => {
    const lab = await labFor(t, { edit: (doc) => (doc.fail_closed = { max_schema_keywords: 10 }) });
    await refused(lab, manyProperties(6), /fail_closed\.max_schema_keywords \(10 /);
  });
});

describe('schemas within the bounds keep working', () => {
  test('a recursive schema (a tree through properties) validates, and a repeated schema is served from the cache', async (t) => {
    const lab = await labFor(t);
    const tree = { type: 'object', properties: { name: { type: 'string', pattern: '^[a-z]+$' }, children: { type: 'array', items: { $ref: '#' } } }, required: ['name'] };
    const valid = JSON.stringify({ name: 'gate', children: [{ name: 'car', children: [{ name: 'plate' }] }] });
    lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: valid }, { kind: 'reply', content: JSON.stringify({ name: 'Gate' }) });
    lab.sims.spark!.pushFault({ kind: 'reply', content: valid });

    const first = await chat(lab, cameraEvent(tree), CAMERA);
    assert.equal(first.status, 200);
    assert.equal(first.json.choices[0].message.content, valid);
    assert.equal(first.headers.get('x-homelab-synthetic'), null);

    // The second answer breaks the pattern: escalated, and spark's valid answer is served.
    const second = await chat(lab, cameraEvent(tree), CAMERA);
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('x-homelab-route'), 'spark');
    assert.equal(second.headers.get('x-homelab-reason'), 'escalated_schema_mismatch');
    const lines = await logLines(lab, 'validation');
    assert.deepEqual(lines.map((l) => [l.route, l.outcome, l.errors[0]]), [['ubuntu-4090', 'schema_mismatch', '/name must match pattern "^[a-z]+$"']]);
    assert.equal(lab.sims['ubuntu-4090']!.received.length, 2);
    assert.equal(lab.sims.spark!.received.length, 1);
    await assertSettled(lab);
    assert.equal(lab.svc.schemas.stats().busy, 0);
    assert.equal(lab.svc.schemas.stats().queued, 0);
  });
});

describe('a check that runs out of time', () => {
  test('is the outcome validation_timeout: escalated like invalid output, and the escalation answer is served', async (t) => {
    const lab = await labFor(t, { edit: (doc) => (doc.fail_closed = { validate_timeout_ms: 10 }) });
    // uniqueItems over objects compares every pair: 30,000 items take seconds, the budget is 10 ms.
    const schema = { type: 'array', uniqueItems: true, items: { type: 'object' } };
    const slow = JSON.stringify(Array.from({ length: 30_000 }, (_, i) => ({ id: i })));
    const quick = JSON.stringify([{ id: 1 }, { id: 2 }]);
    lab.sims['ubuntu-4090']!.pushFault({ kind: 'reply', content: slow });
    lab.sims.spark!.pushFault({ kind: 'reply', content: quick });

    const r = await chat(lab, cameraEvent(schema), { ...CAMERA, 'x-request-id': 'slow-check' });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, quick);
    assert.equal(r.headers.get('x-homelab-route'), 'spark');
    assert.equal(r.headers.get('x-homelab-reason'), 'escalated_validation_timeout');
    assert.equal(r.headers.get('x-homelab-synthetic'), null);
    const lines = await logLines(lab, 'validation');
    assert.deepEqual(lines.map((l) => [l.request_id, l.route, l.outcome, l.action, l.errors[0]]), [
      ['slow-check', 'ubuntu-4090', 'validation_timeout', 'escalate', 'checking the output took longer than fail_closed.validate_timeout_ms (10 ms)'],
    ]);
    assert.equal(lab.sims['ubuntu-4090']!.received.length, 1);
    assert.equal(lab.sims.spark!.received.length, 1);
    await assertSettled(lab);
    // The worker that ran out of time was terminated; nothing waits or runs.
    assert.deepEqual({ ...lab.svc.schemas.stats(), workers: undefined }, { workers: undefined, busy: 0, queued: 0, terminated: 1 });
    // Invalid or unchecked output is the model's doing, not an outage.
    assert.equal(lab.svc.states.get('ubuntu-4090')!.health.consecutiveFailures, 0);
  });
});
