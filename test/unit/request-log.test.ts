// The request log's pure parts: latency histogram and percentiles, cost-equivalent, the API's
// filter parsing, the decision-log line of a record, and the policy keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dump, load } from 'js-yaml';
import { latencyBucket, LATENCY_BOUNDS_MS, percentile, LATENCY_BUCKETS } from '../../router/reqlog/latency.ts';
import { priceOf } from '../../router/reqlog/pricing.ts';
import { parseAnalytics, parseFilters } from '../../router/reqlog/reader.ts';
import { sinceToMs } from '../../router/cli/requests.ts';
import { parsePolicyText, PolicyError } from '../../router/policy/load.ts';
import { RouterError } from '../../router/errors.ts';
import { uuidv7 } from '../../router/request-id.ts';

test('latency histogram – buckets by upper bound; percentiles interpolate within a bucket', () => {
  assert.equal(latencyBucket(0), 0);
  assert.equal(latencyBucket(1), 0);
  assert.equal(latencyBucket(2), 1);
  assert.equal(latencyBucket(600_000), LATENCY_BOUNDS_MS.length - 1);
  assert.equal(latencyBucket(10_000_000), LATENCY_BOUNDS_MS.length);
  const h = new Array<number>(LATENCY_BUCKETS).fill(0);
  assert.equal(percentile(h, 0.5), null);
  // 100 requests between 100 and 150 ms, 5 between 1 and 1.5 s.
  h[latencyBucket(120)] = 100;
  h[latencyBucket(1_200)] = 5;
  const p50 = percentile(h, 0.5)!;
  const p95 = percentile(h, 0.95)!;
  const p99 = percentile(h, 0.99)!;
  assert.ok(p50 > 100 && p50 <= 150, String(p50));
  assert.ok(p95 > 100 && p95 <= 150, String(p95));
  assert.ok(p99 > 1_000 && p99 <= 1_500, String(p99));
});

test('cost-equivalent – overrides, the bundled catalogue (tiered per request), and null when unknown', () => {
  const cfg = { reference: { 'ubuntu-6000': 'anthropic/claude-sonnet-4-5', 'win-5090': 'openai/gpt-4o-mini', 'qwen3-local': 'nobody/nothing' }, overrides: { 'openai/gpt-4o-mini': { input_per_mtok: 0.15, output_per_mtok: 0.6 } } };
  const base = { route: 'ubuntu-6000', served_model: 'glm', prompt_tokens: 10_000, completion_tokens: 2_000 };
  const sonnet = priceOf(base, cfg);
  assert.equal(sonnet.ref, 'anthropic/claude-sonnet-4-5');
  assert.ok(Math.abs(sonnet.usd! - (10_000 * 3 + 2_000 * 15) / 1e6) < 1e-9, String(sonnet.usd));
  // Over 200K input tokens the catalogue's higher tier applies, to this request alone.
  const long = priceOf({ ...base, prompt_tokens: 250_000 }, cfg);
  assert.ok(long.usd! > (250_000 * 3 + 2_000 * 15) / 1e6);
  assert.ok(Math.abs(priceOf({ ...base, route: 'win-5090' }, cfg).usd! - (10_000 * 0.15 + 2_000 * 0.6) / 1e6) < 1e-12);
  // A served model can be the key too.
  assert.equal(priceOf({ ...base, route: 'other', served_model: 'qwen3-local' }, cfg).ref, 'nobody/nothing');
  assert.deepEqual(priceOf({ ...base, route: 'other', served_model: 'qwen3-local' }, cfg), { usd: null, ref: 'nobody/nothing' });
  assert.deepEqual(priceOf({ ...base, route: 'spark' }, cfg), { usd: null, ref: null });
  assert.deepEqual(priceOf({ ...base, prompt_tokens: null }, cfg), { usd: null, ref: 'anthropic/claude-sonnet-4-5' });
});

test('request filters – parsed and checked; bad ones are invalid_request naming the parameter', () => {
  const f = parseFilters({ from: '2026-01-31T12:00:00Z', to: '1769864400000', route: 'spark', status: '5xx', q: 'abc-', limit: '500' });
  assert.equal(f.from, Date.parse('2026-01-31T12:00:00Z'));
  assert.equal(f.to, 1769864400000);
  assert.deepEqual(f.status, { class: 5 });
  assert.equal(f.limit, 500);
  assert.deepEqual(parseFilters({ status: '200' }).status, { exact: 200 });
  assert.equal(parseFilters({}).limit, 50);
  for (const [k, v] of [['limit', '501'], ['limit', '1.5'], ['status', '600'], ['from', 'last tuesday'], ['cursor', 'Zm9v'], ['q', '%'], ['route', ['a', 'b']]] as const) {
    assert.throws(() => parseFilters({ [k]: v }), (e: unknown) => e instanceof RouterError && e.code === 'invalid_request' && e.param === k, `${k}=${v}`);
  }
  assert.deepEqual(parseAnalytics({}), { range: '24h', by: 'route' });
  assert.throws(() => parseAnalytics({ range: '90d' }), RouterError);
  assert.throws(() => parseAnalytics({ by: 'user' }), RouterError);
  assert.equal(sinceToMs('1h', 10_000_000), 10_000_000 - 3_600_000);
  assert.equal(sinceToMs('nonsense'), null);
});

test('policy – request_log and pricing have defaults; a reference to an unknown route is refused', () => {
  const doc = load(readFileSync(new URL('../../routing_policy.yaml', import.meta.url), 'utf8')) as any;
  delete doc.request_log;
  delete doc.pricing;
  const p = parsePolicyText(dump(doc), 'test').doc;
  assert.deepEqual(p.request_log, { enabled: true, retention_days: 30, rollup_retention_days: 400, store_payloads: false, payload_retention_days: 7, payload_max_bytes: 1048576 });
  assert.deepEqual(p.pricing, { reference: {}, overrides: {} });
  doc.pricing = { reference: { 'no-such-route': 'openai/gpt-4o' } };
  assert.throws(() => parsePolicyText(dump(doc), 'test'), (e: unknown) => e instanceof PolicyError && e.errors.some((m) => m.includes('pricing.reference.no-such-route')));
  doc.pricing = { reference: { spark: 'gpt-4o' } };
  assert.throws(() => parsePolicyText(dump(doc), 'test'), PolicyError, 'a reference is provider/model');
  doc.pricing = {};
  doc.request_log = { retention_days: 0 };
  assert.throws(() => parsePolicyText(dump(doc), 'test'), PolicyError);
});

test('request ids – UUID version 7: the time first, so later ids sort after earlier ones', () => {
  const a = uuidv7(1_700_000_000_000);
  const b = uuidv7(1_700_000_000_001);
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(a < b);
  assert.equal(a.slice(0, 13).replace('-', ''), (1_700_000_000_000).toString(16).padStart(12, '0'));
  const many = new Set(Array.from({ length: 1000 }, () => uuidv7(1_700_000_000_000)));
  assert.equal(many.size, 1000);
});
