// Route health beyond one verdict (reliability anchors S21, S24, S26, S27) and its visibility:
// ejections back off and never empty a chain, a route that comes back ramps up slowly, a
// probe does not readmit a route whose real traffic keeps failing, and every change of a
// route's condition is one line naming the route, the URL probed and the error.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { cliEnv, startServe } from '../helpers/cli.ts';
import { assertSettled, chat, coding, hold, labFor, logLines, requestFailures, routeChanges, until } from '../helpers/faults.ts';
import { freePort } from '../helpers/net.ts';
import { pollUntil } from '../helpers/poll.ts';

test('S21: repeated ejections of a route back off (base × n) and it returns by itself', async (t) => {
  const lab = await labFor(t, { edit: (doc) => Object.assign(doc.health, { ejection_base_s: 0.3, ejection_max_s: 30 }) });
  const hands = lab.sims['ubuntu-6000']!;
  const rt = lab.svc.states.get('ubuntu-6000')!;
  hands.setFault({ kind: 'status', status: 500 });

  for (let i = 0; i < 2; i++) assert.equal((await chat(lab, coding())).headers.get('x-homelab-route'), 'spark');
  assert.equal(rt.health.healthy, false);
  assert.equal(rt.health.ejections, 1);
  const skipped = await chat(lab, coding());
  assert.equal(skipped.headers.get('x-homelab-reason'), 'ubuntu-6000_unhealthy');
  assert.equal(hands.received.length, 2, 'not called while ejected');

  // Back by itself once the ejection is over (no probe involved), still failing: ejected again, for longer.
  await until('the first ejection to end', () => rt.health.healthy, 500);
  for (let i = 0; i < 2; i++) assert.equal((await chat(lab, coding())).headers.get('x-homelab-route'), 'spark');
  assert.equal(rt.health.ejections, 2);
  assert.equal(rt.health.healthy, false);
  assert.ok(rt.ejectedForMs() > 300, `the second ejection lasts 2 × base (${rt.ejectedForMs()} ms left)`);

  hands.setFault(null);
  await until('the second ejection to end', () => rt.health.healthy, 500);
  const back = await chat(lab, coding());
  assert.equal(back.headers.get('x-homelab-route'), 'ubuntu-6000');
  const downs = routeChanges(await logLines(lab, 'failures')).filter((c) => c.route === 'ubuntu-6000');
  assert.deepEqual(downs.map((c) => [c.from, c.to, c.ejections ?? null]), [['healthy', 'down', 1], ['down', 'healthy', null], ['healthy', 'down', 2], ['down', 'healthy', null]]);
  await assertSettled(lab);
});

test('S21: at most max_ejected_percent of a chain\'s non-terminal routes are ejected at once; a route past the cap stays in service', async (t) => {
  // ubuntu-6000 > win-5090 > spark: two non-terminal routes, so at 50 % one may be out.
  const lab = await labFor(t, { edit: (doc) => (doc.routes['ubuntu-6000'].fallback.outage = 'win-5090') });
  const hands = lab.sims['ubuntu-6000']!;
  const mouth = lab.sims['win-5090']!;
  hands.setFault({ kind: 'status', status: 500 });
  mouth.setFault({ kind: 'status', status: 500 });

  for (let i = 0; i < 2; i++) {
    const r = await chat(lab, coding());
    assert.equal(r.headers.get('x-homelab-route'), 'spark');
    assert.equal(r.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>win-5090>spark');
  }
  assert.equal(lab.svc.states.get('ubuntu-6000')!.health.healthy, false, 'the first to reach unhealthy_after is ejected');
  assert.equal(lab.svc.states.get('win-5090')!.health.healthy, true, 'the chain keeps one route in');
  const third = await chat(lab, coding());
  assert.equal(third.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>win-5090>spark');
  assert.equal(mouth.received.length, 3, 'still tried');
  assert.equal(hands.received.length, 2, 'not tried while ejected');
  const capped = requestFailures(await logLines(lab, 'failures')).filter((f) => f.route === 'win-5090' && f.ejection);
  assert.ok(capped.length >= 1 && /max_ejected_percent/.test(capped[0].ejection), JSON.stringify(capped));
  await assertSettled(lab);
});

test('S27: once traffic has failed again after a probe let the route back, a passing probe no longer readmits it', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  const rt = lab.svc.states.get('ubuntu-6000')!;
  hands.setFault({ kind: 'status', status: 500 }); // the data path fails; /health keeps passing

  for (let i = 0; i < 2; i++) await chat(lab, coding());
  assert.equal(rt.health.healthy, false);
  await lab.svc.health.probeAll();
  assert.equal(rt.health.healthy, true, 'the first ejection ends on a passing probe');

  for (let i = 0; i < 2; i++) await chat(lab, coding());
  assert.equal(rt.health.ejections, 2);
  for (let i = 0; i < 3; i++) await lab.svc.health.probeAll();
  assert.equal(rt.health.healthy, false, 'probes pass, traffic failed: the ejection holds');
  const r = await chat(lab, coding());
  assert.equal(r.headers.get('x-homelab-reason'), 'ubuntu-6000_unhealthy');
  assert.equal(hands.received.length, 4);
  await assertSettled(lab);
});

test('S24/S26: a route that comes back (down, loading, or after a recovery) ramps up from one slot over slow_start_s', async (t) => {
  const lab = await labFor(t, {
    routeOverrides: { 'ubuntu-6000': { runtime: 'llamacpp', queue: 0 } },
    sim: { 'ubuntu-6000': { runtime: 'llamacpp' } },
    edit: (doc) => (doc.health.slow_start_s = 120),
  });
  const hands = lab.sims['ubuntu-6000']!;
  const rt = lab.svc.states.get('ubuntu-6000')!;
  assert.equal(rt.admission.limit, 4, 'full capacity at start');

  // Down by probes, then back.
  await hands.stop();
  for (let i = 0; i < 2; i++) await lab.svc.health.probeAll();
  assert.equal(rt.health.healthy, false);
  await hands.restart();
  await lab.svc.health.probeAll();
  assert.equal(rt.health.healthy, true);
  assert.equal(rt.admission.limit, 1, 'slow start begins at one slot');
  const held = await hold(lab, 'ubuntu-6000', 1, coding());
  const spilled = await chat(lab, coding());
  assert.equal(spilled.headers.get('x-homelab-route'), 'win-5090', 'past the ramp the request spills');
  assert.equal(spilled.headers.get('x-homelab-reason'), 'ubuntu-6000_saturated');
  assert.ok(hands.peakInFlight() <= 1, `the returning upstream saw ${hands.peakInFlight()} at once`);
  held.releaseAll();
  await held.done;
  await assertSettled(lab);

  // Loading its model (llama.cpp 503), then ready: not a failure, but slow start all the same.
  rt.admission.rampUp(0);
  hands.setHealth('loading');
  await lab.svc.health.probeAll();
  assert.equal(rt.health.loading, true);
  assert.equal(rt.health.consecutiveFailures, 0);
  hands.setHealth(null);
  await lab.svc.health.probeAll();
  assert.equal(rt.admission.limit, 1);

  // A recovery command running: no traffic until probes pass, then slow start.
  rt.admission.rampUp(0);
  rt.beginRecovery('recovery.restart running on host ubuntu-6000');
  assert.equal(rt.health.healthy, false);
  assert.equal((await chat(lab, coding())).headers.get('x-homelab-reason'), 'ubuntu-6000_unhealthy');
  await lab.svc.health.probeAll();
  assert.equal(rt.health.healthy, true);
  assert.equal(rt.admission.limit, 1);

  const changes = routeChanges(await logLines(lab, 'failures')).filter((c) => c.route === 'ubuntu-6000');
  assert.deepEqual(changes.map((c) => [c.from, c.to, c.cause]), [
    ['healthy', 'down', 'probe'],
    ['down', 'healthy', 'probe'],
    ['healthy', 'loading', 'probe'],
    ['loading', 'healthy', 'probe'],
    ['healthy', 'down', 'recovery'],
    ['down', 'healthy', 'probe'],
  ]);
  assert.ok(changes.filter((c) => c.to === 'healthy').every((c) => c.slow_start_s === 120));
  await assertSettled(lab);
});

test('one line per change of a route\'s condition, naming the route, the URL probed and the error', async (t) => {
  const lab = await labFor(t);
  const hands = lab.sims['ubuntu-6000']!;
  const url = `${hands.origin}/health`;
  await hands.stop(); // never answers
  for (let i = 0; i < 4; i++) await lab.svc.health.probeAll();
  await hands.restart();
  await lab.svc.health.probeAll();
  hands.pushFault({ kind: 'status', status: 429, headers: { 'retry-after': '5' } });
  await chat(lab, coding());

  const lines = routeChanges(await logLines(lab, 'failures')).filter((c) => c.route === 'ubuntu-6000');
  assert.deepEqual(lines.map((c) => [c.from, c.to, c.level]), [['healthy', 'down', 'warn'], ['down', 'healthy', 'info'], ['healthy', 'busy', 'warn']]);
  assert.equal(lines[0].url, url);
  assert.match(lines[0].error, /ECONNREFUSED/);
  assert.match(lines[0].msg, new RegExp(`ubuntu-6000 healthy -> down .*${url.replace(/[.]/g, '\\.')}`));
  assert.match(lines[2].error ?? lines[2].msg, /429/);
  await assertSettled(lab);
});

test('a route that never answers is reported on stderr by `homelab-router serve`', async (t) => {
  const dead = await freePort();
  const doc = loadYaml(readFileSync(new URL('../../routing_policy.yaml', import.meta.url), 'utf8')) as any;
  doc.health = { ...doc.health, interval_s: 0.2, timeout_ms: 500 };
  for (const r of Object.values<any>(doc.routes)) r.url = `http://127.0.0.1:${dead}/v1`;
  const dir = mkdtempSync(join(tmpdir(), 'hr-health-'));
  const policy = join(dir, 'routing_policy.yaml');
  writeFileSync(policy, dumpYaml(doc));
  const router = await startServe(['--policy', policy, '--listen', '127.0.0.1:0'], cliEnv({ HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs') }));
  t.after(() => router.stop());

  const line = await pollUntil('a route_state line on stderr for spark', () =>
    router
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((l) => l.event === 'route_state' && l.route === 'spark'), { tries: 100, everyMs: 50 });
  assert.equal(line.to, 'down');
  assert.equal(line.url, `http://127.0.0.1:${dead}/health`);
  assert.match(line.error, /ECONNREFUSED/);
  assert.match(line.msg, /spark healthy -> down/);
});
