// The watchdog against awkward route names and against a second watchdog process: a route
// called `constructor` or `toString` is watched like any other, and when the in-process
// watchdog and the systemd timer's `watchdog --once` wake together, exactly one of them acts.
// Probes go to real simulated upstreams on loopback; the SSH command is recorded instead of
// run (the SSH path has its own suite, watchdog-ssh.test.ts).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dump as dumpYaml } from 'js-yaml';
import pino from 'pino';
import { startSimUpstream, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import { parsePolicyText } from '../../router/policy/load.ts';
import type { CompiledPolicy } from '../../router/policy/compile.ts';
import { Watchdog } from '../../router/recovery/watchdog.ts';
import { formatReport } from '../../router/recovery/watchdog-cli.ts';
import { probeRoute } from '../../router/upstream/probe.ts';

function policyFor(sims: Map<string, SimUpstream>): CompiledPolicy {
  const doc = {
    version: 1,
    classifier: { tie_break: ['general'], default_bucket: 'general' },
    watchdog: { restart_after_failures: 1, cooldown_s: 600 },
    hosts: { gpu: { address: '127.0.0.1', port: 22, user: 'homelab', key_file: '/dev/null' } },
    routes: {
      constructor: { url: sims.get('constructor')!.url, model: 'm-constructor', runtime: 'vllm', context_tokens: 4000, slots: 1, fallback: { outage: 'toString' }, recovery: { host: 'gpu', restart: 'restart constructor' } },
      toString: { url: sims.get('toString')!.url, model: 'm-tostring', runtime: 'vllm', context_tokens: 4000, slots: 1, fallback: 'terminal', recovery: { host: 'gpu', restart: 'restart toString' } },
    },
    buckets: { general: { route: 'constructor' } },
  };
  return parsePolicyText(dumpYaml(doc), 'watchdog-lock-test.yaml');
}

interface Gate {
  wait: Promise<void>;
  open: () => void;
}

function gate(): Gate {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

function watchdogOf(compiled: CompiledPolicy, statePath: string, commands: string[], hold?: Gate): Watchdog {
  return new Watchdog({
    policy: () => compiled,
    probe: (route) => probeRoute(compiled.route(route), 2000),
    exec: async (_host, command) => {
      commands.push(command);
      await hold?.wait;
      return { exitCode: 0, signal: null, stdout: '', stderr: '', truncated: false, timedOut: false, durationMs: 1 };
    },
    log: pino({ level: 'silent' }),
    statePath,
  });
}

async function sims(t: { after: (fn: () => Promise<void>) => void }): Promise<Map<string, SimUpstream>> {
  const out = new Map<string, SimUpstream>();
  for (const name of ['constructor', 'toString']) {
    const sim = await startSimUpstream({ model: `m-${name.toLowerCase()}` });
    t.after(() => sim.close());
    out.set(name, sim);
  }
  return out;
}

test('routes named constructor and toString pass check and are watched like any other', async (t) => {
  const s = await sims(t);
  const compiled = policyFor(s);
  assert.deepEqual([...compiled.routeNames], ['constructor', 'toString']);
  const commands: string[] = [];
  const wd = watchdogOf(compiled, join(mkdtempSync(join(tmpdir(), 'hr-wd-')), 'state.json'), commands);

  const healthy = await wd.runOnce();
  assert.deepEqual(healthy.routes.map((r) => [r.route, r.probe.ok, r.action]), [['constructor', true, 'none'], ['toString', true, 'none']]);
  await s.get('toString')!.stop();
  const down = await wd.runOnce();
  assert.deepEqual(down.routes.map((r) => [r.route, r.probe.ok, r.action, r.result]), [['constructor', true, 'none', 'none'], ['toString', false, 'restart', 'ok']]);
  assert.deepEqual(commands, ['restart toString']);
});

test('the in-process watchdog and `watchdog --once` waking together: exactly one acts', async (t) => {
  const s = await sims(t);
  const compiled = policyFor(s);
  const statePath = join(mkdtempSync(join(tmpdir(), 'hr-wd-')), 'state.json');
  await s.get('constructor')!.stop();
  const commands: string[] = [];
  const held = gate();
  const inProcess = watchdogOf(compiled, statePath, commands, held);
  const timer = watchdogOf(compiled, statePath, commands, held);

  const [a, b] = [inProcess.runOnce(), timer.runOnce()];
  const skipped = await b;
  assert.match(skipped.skipped ?? '', new RegExp(`another watchdog \\(pid ${process.pid} `));
  assert.deepEqual(skipped.routes, []);
  assert.equal(skipped.failed, false);
  assert.match(formatReport(skipped)[0]!, /round skipped: another watchdog/);
  held.open();
  const acted = await a;
  assert.equal(acted.routes.find((r) => r.route === 'constructor')!.result, 'ok');
  assert.deepEqual(commands, ['restart constructor']);
  assert.equal(existsSync(`${statePath}.lock`), false, 'released after the round');

  // The next round of the other watchdog sees the first one's action in the shared state: cooldown.
  const next = await timer.runOnce();
  const r = next.routes.find((x) => x.route === 'constructor')!;
  assert.equal(r.result, 'skipped');
  assert.match(r.why, /cooldown/);
  assert.deepEqual(commands, ['restart constructor']);
});

test('a lock left behind by a process that is gone, or past its expiry, is taken over', async (t) => {
  const s = await sims(t);
  const compiled = policyFor(s);
  const statePath = join(mkdtempSync(join(tmpdir(), 'hr-wd-')), 'state.json');
  await s.get('constructor')!.stop();
  const commands: string[] = [];
  const wd = watchdogOf(compiled, statePath, commands);

  // Expired, from another machine.
  writeFileSync(`${statePath}.lock`, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'old', expires_at: Date.now() - 1000 }));
  assert.equal((await wd.runOnce()).skipped, undefined);
  assert.deepEqual(commands, ['restart constructor']);

  // Still valid, from another machine: respected.
  writeFileSync(`${statePath}.lock`, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'live', expires_at: Date.now() + 60_000 }));
  assert.match((await wd.runOnce()).skipped ?? '', /pid 1 on elsewhere/);
});
