// The probe history through the admin API, against real simulated upstreams that fail their
// health checks in each way a GPU server does: down (503), loading, a CUDA fault, refusing
// connections. The history names each failure by its kind only, survives a reload that changes
// the route, and leaves /admin/upstreams as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { startLab } from '../helpers/lab.ts';

const TOKEN = 'probe-history-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };

test('probe history – each probe of a failing upstream is kept with its kind, no error text, and carried over a reload', async (t) => {
  // llama.cpp: its 503 "Loading model" is a busy answer (vLLM's 503 is an outage).
  const lab = await startLab({ adminToken: TOKEN, policyFile: true, sim: { 'ubuntu-4090': { runtime: 'llamacpp' } }, routeOverrides: { 'ubuntu-4090': { runtime: 'llamacpp' } } });
  t.after(() => lab.close());
  const sim = lab.sims['ubuntu-4090']!;
  const probe = () => lab.svc.health.probeAll();
  const history = async (route = 'ubuntu-4090') => {
    const res = await fetch(`${lab.base}/admin/api/upstreams/${route}/probes`, { headers: auth });
    assert.equal(res.status, 200);
    return (await res.json()) as any;
  };

  assert.deepEqual((await history()).probes, [], 'nothing probed yet');
  await probe();
  sim.setHealth('down');
  await probe();
  sim.setHealth('loading');
  await probe();
  sim.setHealth('cuda');
  await probe();
  await sim.stop();
  await probe();
  await sim.restart();
  sim.setHealth(null);
  await probe();

  const body = await history();
  assert.equal(body.route, 'ubuntu-4090');
  assert.equal(body.interval_s, lab.svc.policy.doc.health.interval_s);
  assert.equal(body.max_probes, 60);
  assert.equal(body.max_age_s, 3600);
  const seen = body.probes.map((p: any) => [p.ok, p.status, p.error, p.busy, p.loading, p.cuda]);
  assert.deepEqual(seen, [
    [true, 200, null, false, false, false],
    [false, 503, 'HTTP 503', true, false, false], // llama.cpp's 503: full, not broken
    [false, 503, 'HTTP 503', true, true, false],
    [false, 500, 'HTTP 500', false, false, true],
    [false, null, 'ECONNREFUSED', false, false, false],
    [true, 200, null, false, false, false],
  ]);
  for (const p of body.probes) {
    assert.equal(typeof p.latency_ms, 'number');
    assert.ok(!Number.isNaN(Date.parse(p.at)), `at is an ISO time: ${p.at}`);
  }
  const times = body.probes.map((p: any) => Date.parse(p.at));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first');
  // The last error in full is the admin's (/admin/upstreams); the history names kinds only.
  assert.doesNotMatch(JSON.stringify(body), /Service Unavailable|Loading model|CUDA error|launch failure|127\.0\.0\.1|\/health/);

  // Every other route was probed each round and passed.
  assert.equal((await history('spark')).probes.filter((p: any) => p.ok).length, 6);

  // A reload that changes the route's settings keeps its history (and its other machine state).
  const before = lab.svc.states.get('ubuntu-4090')!;
  const doc = loadYaml(readFileSync(lab.policyPath!, 'utf8')) as any;
  doc.routes['ubuntu-4090'].timeout_ms = 25_000;
  writeFileSync(lab.policyPath!, dumpYaml(doc));
  const reload = await fetch(`${lab.base}/admin/reload-config`, { method: 'POST', headers: auth });
  assert.equal(reload.status, 200);
  assert.notEqual(lab.svc.states.get('ubuntu-4090'), before, 'the route got a new runtime');
  await probe(); // the reload probes the changed route; wait for that round
  const after = await history();
  assert.deepEqual(after.probes.slice(0, 6), body.probes);
  assert.equal(after.probes.length, 7);
  assert.equal(after.probes[6].ok, true);

  // /admin/upstreams keeps exactly the fields it had.
  const ups = (await (await fetch(`${lab.base}/admin/upstreams`, { headers: auth })).json()) as any;
  assert.deepEqual(Object.keys(ups.upstreams[0]).sort(), ['busy_until', 'consecutive_failures', 'drained', 'healthy', 'in_flight', 'last_error', 'last_probe_at', 'latency_ms', 'model', 'queue', 'queued', 'route', 'runtime', 'saturated', 'slots', 'url'].sort());
});

test('probe history – an unknown route is 404, no token is 401', async (t) => {
  const lab = await startLab({ adminToken: TOKEN });
  t.after(() => lab.close());
  const unknown = await fetch(`${lab.base}/admin/api/upstreams/nope/probes`, { headers: auth });
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as any).error.code, 'not_found');
  const anonymous = await fetch(`${lab.base}/admin/api/upstreams/spark/probes`);
  assert.equal(anonymous.status, 401);
  await anonymous.text();
});
