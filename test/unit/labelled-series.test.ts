// The request metrics' own series (router/obs/labelled-series.ts) must expose exactly what
// prom-client's Counter and Histogram expose for the same updates: prom-client itself is the
// oracle here, fed the same values in the same order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { LabelledCounter, LabelledHistogram } from '../../router/obs/labelled-series.ts';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  const help = { duration: 'Time from request received to response end, by route.', requests: 'Requests answered.' };
  return {
    theirs,
    ours,
    hist: [new Histogram({ name: 'x_duration_seconds', help: help.duration, labelNames: ['route'] as const, buckets: BUCKETS, registers: [theirs] }), new LabelledHistogram({ name: 'x_duration_seconds', help: help.duration, labelNames: ['route'] as const, buckets: BUCKETS, registers: [ours] })] as const,
    count: [new Counter({ name: 'x_requests_total', help: help.requests, labelNames: ['route', 'code'] as const, registers: [theirs] }), new LabelledCounter({ name: 'x_requests_total', help: help.requests, labelNames: ['route', 'code'] as const, registers: [ours] })] as const,
  };
}

/** JSON with every object's keys sorted (prom-client's metric objects list `help` first). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

test('labelled series expose what prom-client exposes for the same updates (text and JSON)', async () => {
  const p = pair();
  const [theirHist, ourHist] = p.hist;
  const [theirCount, ourCount] = p.count;
  theirHist.zero({ route: 'quiet' });
  ourHist.zero({ route: 'quiet' });
  theirCount.labels({ route: 'quiet', code: '200' }).inc(0);
  ourCount.series({ route: 'quiet', code: '200' }).inc(0);
  // On a bound, between bounds, past the last bound (only +Inf), tiny and zero.
  const values = [0, 0.005, 0.0051, 0.3, 1, 299.9, 300, 301, 4000, 0.000001, 2.5, 7];
  const routes = ['gpu-a', 'gpu-b', 'gpu-a', 'cpu'];
  values.forEach((v, i) => {
    const route = routes[i % routes.length]!;
    theirHist.labels({ route }).observe(v);
    ourHist.series({ route }).observe(v);
    const code = i % 3 === 0 ? '503' : '200';
    theirCount.inc({ route, code }, i + 1);
    ourCount.inc({ route, code }, i + 1);
  });
  assert.equal(await p.ours.metrics(), await p.theirs.metrics());
  assert.equal(canonical(await p.ours.getMetricsAsJSON()), canonical(await p.theirs.getMetricsAsJSON()));
  // A reset empties both alike.
  p.theirs.resetMetrics();
  p.ours.resetMetrics();
  assert.equal(await p.ours.metrics(), await p.theirs.metrics());
});

test('labelled series refuse what prom-client refuses: a value that is not a number, a missing label', () => {
  const { hist, count } = pair();
  assert.throws(() => hist[1].series({ route: 'a' }).observe(Number.NaN), /not a valid number/);
  assert.throws(() => hist[0].labels({ route: 'a' }).observe(Number.NaN), /not a valid number/);
  assert.throws(() => count[1].inc({ route: 'a' } as never), /label "code" is missing/);
});
