// The fail-closed schema guard's parts: the bounds walk and the $ref-cycle check (pure), and the
// worker pool (real worker threads): time budgets end in a clean outcome, a worker past its
// budget is terminated and replaced, and the pool never grows past its size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RouterError } from '../../router/errors.ts';
import type { FailClosedLimits } from '../../router/policy/types.ts';
import { schemaBoundsError } from '../../router/schema-guard/bounds.ts';
import { SchemaGuard } from '../../router/schema-guard/guard.ts';
import { refCycle } from '../../router/schema-guard/ref-cycles.ts';

const LIMITS: FailClosedLimits = { max_schema_bytes: 65536, max_schema_depth: 32, max_schema_keywords: 2000, compile_timeout_ms: 5000, validate_timeout_ms: 5000, workers: 2 };

function properties(n: number): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) props[`p${i}`] = { type: 'integer' };
  return { type: 'object', properties: props };
}

test('bounds: a schema within every bound passes; each bound is named when crossed', () => {
  assert.equal(schemaBoundsError(properties(10), LIMITS), null);
  assert.match(schemaBoundsError(properties(1500), LIMITS)!, /fail_closed\.max_schema_keywords \(2000 /);
  assert.match(schemaBoundsError({ enum: Array.from({ length: 2500 }, (_, i) => i) }, LIMITS)!, /max_schema_keywords/);
  assert.match(schemaBoundsError({ description: 'x'.repeat(70_000) }, LIMITS)!, /fail_closed\.max_schema_bytes \(65536 /);
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 200_000; i++) deep = { not: deep };
  // Iterative: far deeper than the stack could recurse, and it stops at the bound.
  assert.match(schemaBoundsError(deep, LIMITS)!, /fail_closed\.max_schema_depth \(32 /);
  let ok: Record<string, unknown> = {};
  for (let i = 0; i < 31; i++) ok = { not: ok };
  assert.equal(schemaBoundsError(ok, LIMITS), null);
});

test('ref cycles: same-value cycles are found; recursion through properties or items is not a cycle', () => {
  assert.equal(refCycle({ $ref: '#' }), '#');
  assert.equal(refCycle({ $ref: '#/definitions/a', definitions: { a: { $ref: '#/definitions/a' } } }), '#/definitions/a');
  assert.equal(refCycle({ definitions: { a: { anyOf: [{ type: 'null' }, { $ref: '#/definitions/b' }] }, b: { if: { type: 'string' }, then: { $ref: '#/definitions/a' } } }, $ref: '#/definitions/a' }) !== null, true);
  assert.equal(refCycle({ $defs: { x: { not: { $ref: '#/$defs/x' } } } }), '#/$defs/x');
  assert.equal(refCycle({ type: 'object', properties: { child: { $ref: '#' } } }), null);
  assert.equal(refCycle({ type: 'array', items: { $ref: '#' } }), null);
  assert.equal(refCycle({ definitions: { node: { properties: { next: { $ref: '#/definitions/node' } } } }, $ref: '#/definitions/node' }), null);
  assert.equal(refCycle({ $ref: 'https://example.invalid/other.json' }), null);
});

test('a check past validate_timeout_ms is the outcome validation_timeout; its worker is terminated and the next check gets a fresh one', async (t) => {
  const guard = new SchemaGuard(1);
  t.after(() => guard.close());
  // uniqueItems over objects compares every pair: 30,000 items take seconds, the budget is 50 ms.
  const schema = await guard.prepare({ type: 'array', uniqueItems: true }, LIMITS);
  const slow = JSON.stringify(Array.from({ length: 30_000 }, (_, i) => ({ id: i })));
  const verdict = await guard.check(schema, slow, { ...LIMITS, validate_timeout_ms: 50 });
  assert.deepEqual(verdict, { ok: false, outcome: 'validation_timeout', errors: ['checking the output took longer than fail_closed.validate_timeout_ms (50 ms)'] });
  assert.equal(guard.stats().terminated, 1);
  assert.equal(guard.stats().busy, 0);
  assert.equal(guard.stats().queued, 0);

  assert.deepEqual(await guard.check(schema, '[{"id":1},{"id":2}]', LIMITS), { ok: true });
  assert.deepEqual(await guard.check(schema, '[{"id":1},{"id":1}]', LIMITS), { ok: false, outcome: 'schema_mismatch', errors: ['(root) must NOT have duplicate items (items ## 0 and 1 are identical)'] });
  assert.deepEqual(await guard.check(schema, '[1,', LIMITS).then((v) => (v.ok ? v : v.outcome)), 'invalid_json');
  assert.equal(guard.stats().workers, 1);
});

test('a schema that compiles past compile_timeout_ms is a 400 naming the bound, and is not remembered as refused', async (t) => {
  const guard = new SchemaGuard(1);
  t.after(() => guard.close());
  const big = properties(900);
  await assert.rejects(guard.prepare(big, { ...LIMITS, compile_timeout_ms: 1 }), (err: unknown) => {
    assert.ok(err instanceof RouterError);
    assert.equal(err.status, 400);
    assert.equal(err.code, 'invalid_request');
    assert.match(err.message, /took longer than fail_closed\.compile_timeout_ms \(1 ms\) to compile/);
    return true;
  });
  const prepared = await guard.prepare(big, LIMITS);
  assert.deepEqual(await guard.check(prepared, '{"p1":1,"p2":"x"}', LIMITS), { ok: false, outcome: 'schema_mismatch', errors: ['/p2 must be integer'] });
});

test('the pool never runs more workers than fail_closed.workers, and every job is answered', async (t) => {
  const guard = new SchemaGuard(2);
  t.after(() => guard.close());
  const schemas = await Promise.all(Array.from({ length: 6 }, (_, i) => guard.prepare({ type: 'object', required: [`k${i}`] }, LIMITS)));
  let peak = 0;
  const checks = schemas.map((s, i) => guard.check(s, JSON.stringify({ [`k${i}`]: i }), LIMITS));
  peak = Math.max(peak, guard.stats().workers);
  assert.ok(guard.stats().queued > 0, 'six checks on two workers: some wait');
  const verdicts = await Promise.all(checks);
  assert.deepEqual(verdicts, schemas.map(() => ({ ok: true })));
  assert.ok(peak <= 2 && guard.stats().workers <= 2);
  assert.deepEqual({ busy: guard.stats().busy, queued: guard.stats().queued }, { busy: 0, queued: 0 });
  await guard.close();
  assert.equal(guard.stats().workers, 0);
});

test('a pattern runs on the linear-time engine: a catastrophic one answers at once', async (t) => {
  const guard = new SchemaGuard(1);
  t.after(() => guard.close());
  const schema = await guard.prepare({ type: 'string', pattern: '^(a+)+$' }, LIMITS);
  // With a backtracking engine 40 a's and a "!" take hours; the budget here is the default.
  assert.deepEqual(await guard.check(schema, JSON.stringify('a'.repeat(40) + '!'), LIMITS), { ok: false, outcome: 'schema_mismatch', errors: ['(root) must match pattern "^(a+)+$"'] });
  assert.deepEqual(await guard.check(schema, JSON.stringify('a'.repeat(40)), LIMITS), { ok: true });
  assert.equal(guard.stats().terminated, 0);
});
