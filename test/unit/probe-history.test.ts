// The probe history's bounds (count and age), its order, and what it keeps of a failed probe:
// the kind of error, never its text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROBE_HISTORY_MAX, PROBE_HISTORY_MAX_AGE_MS, ProbeHistory, probeRecord } from '../../router/upstream/probe-history.ts';
import type { ProbeResult } from '../../router/upstream/probe.ts';
import { errorKind, publicErrorSummary } from '../../router/upstream/redact.ts';

const T0 = Date.parse('2026-12-06T03:00:00Z');

function passed(at: number, latencyMs = 12): ProbeResult {
  return { ok: true, busy: false, loading: false, cuda: false, status: 200, latencyMs, at };
}

test('probe history – never holds more than its capacity: the oldest make room, the rest stay in order', () => {
  const h = new ProbeHistory();
  assert.equal(h.capacity, PROBE_HISTORY_MAX);
  const n = PROBE_HISTORY_MAX * 3 + 7;
  for (let i = 0; i < n; i++) {
    h.add(passed(T0 + i * 1000, i));
    assert.ok(h.size <= PROBE_HISTORY_MAX, `size ${h.size} after ${i + 1} probes`);
  }
  const list = h.list(T0 + n * 1000);
  assert.equal(list.length, PROBE_HISTORY_MAX);
  assert.deepEqual(
    list.map((r) => r.latencyMs),
    Array.from({ length: PROBE_HISTORY_MAX }, (_, i) => n - PROBE_HISTORY_MAX + i),
  );
});

test('probe history – shows nothing older than an hour', () => {
  const h = new ProbeHistory(10);
  h.add(passed(T0, 1));
  h.add(passed(T0 + 60_000, 2));
  h.add(passed(T0 + 120_000, 3));
  assert.equal(h.list(T0 + 120_000).length, 3);
  assert.deepEqual(
    h.list(T0 + 60_000 + PROBE_HISTORY_MAX_AGE_MS).map((r) => r.latencyMs),
    [2, 3],
  );
  assert.deepEqual(h.list(T0 + 120_001 + PROBE_HISTORY_MAX_AGE_MS), []);
});

test('probe history – a result told twice is kept once, one older than the newest is dropped, two probes in the same millisecond are both kept', () => {
  const h = new ProbeHistory(5);
  h.add(passed(T0 + 2000, 1));
  h.add(passed(T0 + 2000, 1));
  h.add(passed(T0 + 1000, 9));
  h.add(passed(T0 + 3000, 2));
  h.add({ ...passed(T0 + 3000, 0), ok: false, status: 503, error: 'x: HTTP 503: down' });
  assert.deepEqual(
    h.list(T0 + 3000).map((r) => [r.latencyMs, r.ok]),
    [
      [1, true],
      [2, true],
      [0, false],
    ],
  );
});

test('probe history – a small ring wraps correctly', () => {
  const h = new ProbeHistory(3);
  for (let i = 1; i <= 4; i++) h.add(passed(T0 + i, i));
  assert.deepEqual(
    h.list(T0 + 10).map((r) => r.latencyMs),
    [2, 3, 4],
  );
  assert.throws(() => new ProbeHistory(0), RangeError);
});

test('probe history – a failed probe keeps its kind (status, timeout, error code, busy, CUDA), never its text', () => {
  const url = 'http://192.0.2.11:8000/health';
  const http503 = probeRecord({ ok: false, busy: false, loading: false, cuda: false, status: 503, error: `${url}: HTTP 503: {"error":"the prompt was: my secret diary"}`, latencyMs: 4, at: T0 });
  assert.deepEqual(http503, { at: T0, ok: false, latencyMs: 4, status: 503, error: 'HTTP 503', busy: false, loading: false, cuda: false });

  const loading = probeRecord({ ok: false, busy: true, loading: true, cuda: false, status: 503, error: `${url}: HTTP 503: Loading model`, latencyMs: 3, at: T0 });
  assert.equal(loading.error, 'HTTP 503');
  assert.equal(loading.busy, true);
  assert.equal(loading.loading, true);

  const cuda = probeRecord({ ok: false, busy: false, loading: false, cuda: true, status: 500, error: `${url}: HTTP 500: CUDA error: unspecified launch failure`, latencyMs: 3, at: T0 });
  assert.equal(cuda.error, 'HTTP 500');
  assert.equal(cuda.cuda, true);

  const refused = probeRecord({ ok: false, busy: false, loading: false, cuda: false, error: `${url}: ECONNREFUSED: connect ECONNREFUSED 192.0.2.11:8000`, latencyMs: 1, at: T0 });
  assert.equal(refused.status, null);
  assert.equal(refused.error, 'ECONNREFUSED');

  const timeout = probeRecord({ ok: false, busy: false, loading: false, cuda: false, error: `${url}: timeout after 3000 ms`, latencyMs: 3000, at: T0 });
  assert.equal(timeout.error, 'timeout');

  const ok = probeRecord(passed(T0));
  assert.equal(ok.error, null);

  for (const r of [http503, loading, cuda, refused, timeout]) assert.doesNotMatch(JSON.stringify(r), /secret|192\.0\.2|Loading model|launch failure|health/);
});

test('error kinds – the same words the unauthenticated /stats shows, plus timeouts', () => {
  assert.equal(errorKind('x: HTTP 429: slow down'), 'HTTP 429');
  assert.equal(errorKind('x: UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error'), 'timeout');
  assert.equal(errorKind('x: ECONNRESET: socket hang up'), 'ECONNRESET');
  assert.equal(errorKind('something odd'), 'failed');
  // /stats is unchanged by the shared helper.
  assert.equal(publicErrorSummary('x: HTTP 500: boom'), 'HTTP 500 (details with the admin token)');
  assert.equal(publicErrorSummary('x: timeout after 3000 ms'), 'failed (details with the admin token)');
});
