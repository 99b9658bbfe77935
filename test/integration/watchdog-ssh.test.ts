// The watchdog end to end: real probes against tiny local upstreams, real recovery commands
// run by a real sshd on 127.0.0.1, state in a real file between `--once` runs.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { RouterError } from '../../router/errors.ts';
import { parsePolicyText } from '../../router/policy/load.ts';
import type { HostConfig, RecoveryConfig } from '../../router/policy/types.ts';
import { runRemote } from '../../router/recovery/ssh-exec.ts';
import { formatReport, runWatchdogOnce } from '../../router/recovery/watchdog-cli.ts';
import { Watchdog, type WatchdogReport } from '../../router/recovery/watchdog.ts';
import { probeRoute, type ProbeResult } from '../../router/upstream/probe.ts';
import { sshdAvailable, startSshd, type TestSshd } from '../helpers/sshd.ts';

type Mode = 'ok' | 'down' | 'cuda';

interface FakeUpstream {
  url: string;
  mode: Mode;
  close(): Promise<void>;
}

// Answers /v1/models as vLLM would when healthy, overloaded or with a poisoned GPU.
async function fakeUpstream(mode: Mode = 'ok'): Promise<FakeUpstream> {
  const up = { mode } as FakeUpstream;
  const server: Server = createServer((req, res) => {
    if (up.mode === 'ok') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }));
    } else if (up.mode === 'down') {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('engine not ready');
    } else {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('CUDA error: unspecified launch failure');
    }
    req.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  up.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
  up.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return up;
}

interface RouteSpec {
  upstream: FakeUpstream;
  recovery: RecoveryConfig;
}

function policyText(routes: Record<string, RouteSpec>, hosts: Record<string, HostConfig>, watchdog: Record<string, unknown> = {}): string {
  const names = Object.keys(routes);
  // JSON is YAML, so the policy goes through the same loader as routing_policy.yaml.
  return JSON.stringify({
    version: 1,
    classifier: { tie_break: ['general'], default_bucket: 'general' },
    health: { timeout_ms: 2000 },
    routes: Object.fromEntries(
      names.map((n) => [n, { url: routes[n]!.upstream.url, model: `model-${n}`, runtime: 'vllm', context_tokens: 4096, slots: 1, fallback: 'terminal', recovery: routes[n]!.recovery }]),
    ),
    hosts,
    buckets: { general: { route: names[0] } },
    watchdog: { restart_after_failures: 2, cooldown_s: 600, max_restarts_per_hour: 3, command_timeout_ms: 15_000, ...watchdog },
  });
}

function events(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function lines(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

const skip = sshdAvailable() ? false : 'needs /usr/sbin/sshd and ssh-keygen (apt-get install openssh-server)';

describe('watchdog against a real sshd', { skip }, () => {
  let sshd: TestSshd;
  let work: string;
  let host: HostConfig;
  const upstreams: FakeUpstream[] = [];
  const upstream = async (mode: Mode) => {
    const u = await fakeUpstream(mode);
    upstreams.push(u);
    return u;
  };

  before(async () => {
    sshd = await startSshd();
    work = mkdtempSync(join(tmpdir(), 'hr-watchdog-'));
    host = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_file: sshd.clientKey, known_hosts: sshd.knownHosts };
  });

  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    await sshd?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A Watchdog in this process, logging synchronously so the file can be read at once. */
  function watchdogFor(name: string, text: string) {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    const compiled = parsePolicyText(text, `${name}.yaml`);
    const logFile = join(dir, 'recovery-events.jsonl');
    const actions: string[] = [];
    const wd = new Watchdog({
      policy: () => compiled,
      probe: (route) => probeRoute(compiled.route(route), 2000),
      exec: runRemote,
      log: pino({ base: null }, pino.destination({ dest: logFile, sync: true })),
      statePath: join(dir, 'state.json'),
      onAction: (route, action, result) => actions.push(`${route}:${action}:${result}`),
    });
    return { wd, dir, logFile, actions, statePath: join(dir, 'state.json') };
  }

  test('watchdog --once: restart after 2 failures, cooldown, unmanaged paged once, CUDA runbook, state between runs', async () => {
    const dir = join(work, 'once');
    mkdirSync(dir, { recursive: true });
    const [a, brain, c] = [await upstream('down'), await upstream('down'), await upstream('ok')];
    const policyPath = join(dir, 'policy.yaml');
    writeFileSync(
      policyPath,
      policyText(
        {
          'gpu-a': { upstream: a, recovery: { host: 'lab-a', restart: `echo restarted >> ${dir}/restarted-gpu-a` } },
          brain: { upstream: brain, recovery: { managed: false, host: 'lab-a', restart: `touch ${dir}/touched-brain`, cuda: `touch ${dir}/touched-brain` } },
          'gpu-c': { upstream: c, recovery: { host: 'lab-c', restart: `echo restarted >> ${dir}/restarted-gpu-c`, cuda: `touch ${dir}/cuda-gpu-c` } },
        },
        { 'lab-a': host, 'lab-c': host },
      ),
    );
    const logDir = join(dir, 'logs');
    const logFile = join(logDir, 'recovery-events.jsonl');
    const statePath = join(logDir, 'watchdog-state.json');
    const run = async () => {
      const out: string[] = [];
      const code = await runWatchdogOnce({ policyPath, logDir, out: (l) => out.push(l) });
      return { code, out: out.join('\n') };
    };

    // Run 1: first failure of gpu-a and brain; nothing runs yet.
    const r1 = await run();
    assert.equal(r1.code, 0, r1.out);
    assert.match(r1.out, /ROUTE\s+PROBE\s+FAILURES\s+ACTION\s+RESULT/);
    assert.equal(existsSync(`${dir}/restarted-gpu-a`), false);
    const s1 = JSON.parse(readFileSync(statePath, 'utf8'));
    assert.equal(s1.routes['gpu-a'].consecutive_failures, 1);

    // Run 2, a new process as far as the watchdog knows: the count came from the file.
    c.mode = 'cuda';
    const r2 = await run();
    assert.equal(r2.code, 0, r2.out);
    assert.equal(lines(`${dir}/restarted-gpu-a`), 1, 'the restart command ran on the host');
    assert.equal(existsSync(`${dir}/cuda-gpu-c`), true, 'a CUDA error from the probe ran recovery.cuda');
    assert.equal(existsSync(`${dir}/restarted-gpu-c`), false, 'CUDA took precedence over restart');
    assert.match(r2.out, /gpu-a\s+http 503\s+2\s+restart\s+ok \(exit 0\)/);
    const s2 = JSON.parse(readFileSync(statePath, 'utf8'));
    assert.equal(s2.routes['gpu-a'].consecutive_failures, 2);
    assert.equal(s2.routes['gpu-a'].actions.length, 1);
    assert.equal(s2.routes['gpu-a'].last_result.ok, true);

    // Run 3: still down, but inside cooldown_s: no second restart.
    c.mode = 'ok';
    const r3 = await run();
    assert.equal(r3.code, 0, r3.out);
    assert.equal(lines(`${dir}/restarted-gpu-a`), 1, 'cooldown held');
    assert.match(r3.out, /gpu-a .*restart\s+skipped .*cooldown/);

    assert.equal(existsSync(`${dir}/touched-brain`), false, 'managed: false route never touched');
    const log = events(logFile);
    const pages = log.filter((e) => e.event === 'operator_page_required');
    assert.equal(pages.length, 1, 'paged once per outage, not every minute');
    assert.equal(pages[0]!.route, 'brain');
    const restart = log.find((e) => e.event === 'recovery_action' && e.route === 'gpu-a')!;
    assert.equal(restart.action, 'restart');
    assert.equal(restart.host, 'lab-a');
    assert.equal(restart.exit_code, 0);
    assert.equal(restart.timed_out, false);
    assert.equal(restart.trigger, 'watchdog');
    assert.equal(restart.cause, 'probe_failures');
    assert.equal(restart.command, `echo restarted >> ${dir}/restarted-gpu-a`);
    for (const key of ['duration_ms', 'stdout_tail', 'stderr_tail']) assert.ok(key in restart, key);
    const cuda = log.find((e) => e.event === 'recovery_action' && e.route === 'gpu-c')!;
    assert.equal(cuda.action, 'cuda');
    assert.equal(cuda.cause, 'cuda_probe');
    const backoff = log.filter((e) => e.event === 'recovery_backoff' && e.route === 'gpu-a');
    assert.equal(backoff.length, 1);
    assert.match(String(backoff[0]!.why), /cooldown/);
    assert.ok(!log.some((e) => e.route === 'brain' && (e.event === 'recovery_action' || e.event === 'recovery_started')));

    // Run 4: brain answers again; the next outage would page afresh.
    brain.mode = 'ok';
    assert.equal((await run()).code, 0);
    assert.equal(JSON.parse(readFileSync(statePath, 'utf8')).routes.brain.paged, false);
    assert.ok(events(logFile).some((e) => e.event === 'route_recovered' && e.route === 'brain'));
  });

  test('CUDA fault noted by the data plane, and a failing cuda_check, run recovery.cuda', async () => {
    const [u1, u2] = [await upstream('ok'), await upstream('ok')];
    const { wd, dir, logFile, actions } = watchdogFor(
      'noted',
      policyText(
        {
          eyes: { upstream: u1, recovery: { host: 'h1', restart: 'true', cuda: `touch ${work}/noted/cuda-eyes` } },
          hands: { upstream: u2, recovery: { host: 'h2', cuda: `touch ${work}/noted/cuda-hands`, cuda_check: 'echo "GPU is lost" >&2; exit 3' } },
        },
        { h1: host, h2: host },
      ),
    );
    const quiet = await wd.runOnce();
    assert.equal(quiet.routes.find((r) => r.route === 'eyes')!.action, 'none');
    assert.equal(existsSync(`${dir}/cuda-eyes`), false);
    assert.equal(existsSync(`${dir}/cuda-hands`), true, 'cuda_check exiting 3 triggered recovery.cuda');

    wd.noteCudaFault('eyes');
    const report = await wd.runOnce();
    assert.equal(report.routes.find((r) => r.route === 'eyes')!.result, 'ok');
    assert.equal(existsSync(`${dir}/cuda-eyes`), true);
    const log = events(logFile);
    assert.equal(log.find((e) => e.event === 'recovery_action' && e.route === 'eyes')!.cause, 'cuda_request');
    assert.equal(log.find((e) => e.event === 'recovery_action' && e.route === 'hands')!.cause, 'cuda_check');
    const check = log.find((e) => e.event === 'cuda_check_failed')!;
    assert.equal(check.exit_code, 3);
    assert.match(String(check.stderr_tail), /GPU is lost/);
    // hands' check still fails in the second round, but its cooldown holds the runbook back.
    assert.deepEqual(actions.sort(), ['eyes:cuda:ok', 'hands:cuda:ok', 'hands:cuda:skipped']);
  });

  test('recoverCuda: 409 while one runs on the host, 422 unmanaged, 404 unknown, 400 without recovery.cuda', async () => {
    const [u1, u2, u3] = [await upstream('ok'), await upstream('ok'), await upstream('ok')];
    const { wd, dir, logFile, statePath } = watchdogFor(
      'admin',
      policyText(
        {
          eyes: { upstream: u1, recovery: { host: 'h', cuda: `sleep 0.3; touch ${work}/admin/cuda-eyes` } },
          twin: { upstream: u2, recovery: { host: 'h', restart: 'true', cuda: `touch ${work}/admin/cuda-twin` } },
          brain: { upstream: u3, recovery: { managed: false } },
        },
        { h: host },
      ),
    );
    const first = wd.recoverCuda('eyes', 'admin');
    // Same host through another route: the lock is per host, not per route.
    await assert.rejects(wd.recoverCuda('twin', 'admin'), (e: RouterError) => e.code === 'conflict' && e.status === 409 && /already running on host "h"/.test(e.message));
    await assert.rejects(wd.recoverCuda('eyes', 'admin'), (e: RouterError) => e.status === 409);
    const outcome = await first;
    assert.equal(outcome.ok, true);
    assert.equal(outcome.exit_code, 0);
    assert.equal(outcome.host, 'h');
    assert.equal(existsSync(`${dir}/cuda-eyes`), true);
    assert.equal(existsSync(`${dir}/cuda-twin`), false);

    // Lock released: the host is free again.
    assert.equal((await wd.recoverCuda('twin', 'admin')).ok, true);
    await assert.rejects(wd.recoverCuda('brain', 'admin'), (e: RouterError) => e.code === 'route_unmanaged' && e.status === 422);
    await assert.rejects(wd.recoverCuda('nope', 'admin'), (e: RouterError) => e.code === 'not_found' && e.status === 404);
    const restartOnly = watchdogFor('admin-400', policyText({ r: { upstream: u1, recovery: { host: 'h', restart: 'true' } } }, { h: host }));
    await assert.rejects(restartOnly.wd.recoverCuda('r', 'admin'), (e: RouterError) => e.code === 'invalid_request' && /no recovery\.cuda/.test(e.message));

    // The on-demand run is in the state file, so the watchdog's cooldown counts it.
    const state = JSON.parse(readFileSync(statePath, 'utf8'));
    assert.equal(state.routes.eyes.actions.length, 1);
    assert.equal(state.routes.eyes.last_result.trigger, 'admin');
    wd.noteCudaFault('eyes');
    const report = await wd.runOnce();
    const eyes = report.routes.find((r) => r.route === 'eyes')!;
    assert.deepEqual([eyes.action, eyes.result], ['cuda', 'skipped']);
    assert.equal(events(logFile).filter((e) => e.event === 'recovery_action' && e.trigger === 'admin').length, 2);
  });

  test('a failing restart command is reported with its exit code and output', async () => {
    const u = await upstream('down');
    const { wd, logFile } = watchdogFor('failing', policyText({ r: { upstream: u, recovery: { host: 'h', restart: 'echo starting; echo "unit not found" >&2; exit 7' } } }, { h: host }, { restart_after_failures: 1 }));
    const report = await wd.runOnce();
    assert.equal(report.failed, true);
    assert.deepEqual([report.routes[0]!.result, report.routes[0]!.exit_code], ['failed', 7]);
    const line = events(logFile).find((e) => e.event === 'recovery_action')!;
    assert.equal(line.ok, false);
    assert.equal(line.stdout_tail, 'starting\n');
    assert.equal(line.stderr_tail, 'unit not found\n');
  });

  test('host keys: known_hosts plain and hashed, pinned fingerprint; mismatch refused naming the key seen', async () => {
    assert.equal((await runRemote(host, 'echo plain', { timeoutMs: 10_000 })).stdout, 'plain\n');
    const hashed = join(work, 'known_hosts_hashed');
    writeFileSync(hashed, `# hashed entries, as HashKnownHosts writes them\n${sshd.hashedKnownHostsLine()}\n`);
    assert.equal((await runRemote({ ...host, known_hosts: hashed }, 'echo hashed', { timeoutMs: 10_000 })).exitCode, 0);
    const pinned: HostConfig = { ...host, known_hosts: '/nonexistent/known_hosts', host_key_sha256: sshd.hostKeyFingerprint };
    assert.equal((await runRemote(pinned, 'echo pinned', { timeoutMs: 10_000 })).stdout, 'pinned\n');

    const wrong = join(work, 'known_hosts_wrong');
    writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ${sshd.otherKeyLine()}\n`);
    await assert.rejects(runRemote({ ...host, known_hosts: wrong }, 'touch /tmp/never', { timeoutMs: 10_000 }), (e: Error) => {
      assert.match(e.message, /host key mismatch for \[127\.0\.0\.1\]:\d+/);
      assert.ok(e.message.includes(sshd.hostKeyFingerprint), e.message);
      return true;
    });
    await assert.rejects(runRemote({ ...host, host_key_sha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, 'true', { timeoutMs: 10_000 }), /policy pins SHA256:A+, server offered SHA256:/);
    await assert.rejects(runRemote({ ...host, known_hosts: join(work, 'empty_known_hosts') }, 'true', { timeoutMs: 10_000 }), /is not in .*empty_known_hosts \(server offered SHA256:/);
  });

  test('command timeout: timedOut, the connection closed, no socket or timer left behind', async () => {
    // The deadline must fall while the command runs, not during the handshake: it is set from
    // how long a whole connection took just now (a loaded machine takes seconds), so the test
    // checks the same path however slow the machine is. The remote sleep outlasts it by far.
    const probe = await runRemote(host, 'true', { timeoutMs: 20_000 });
    assert.equal(probe.exitCode, 0);
    const timeoutMs = Math.min(15_000, Math.max(300, probe.durationMs * 4));
    const before = resources();
    const r = await runRemote(host, 'sleep 30', { timeoutMs });
    // Settled, not rejected: the connection came up and the command was running when the deadline fell.
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, null);
    const afterward = resources();
    assert.ok(afterward.sockets <= before.sockets, `sockets ${before.sockets} -> ${afterward.sockets}`);
    assert.ok(afterward.timers <= before.timers, `timers ${before.timers} -> ${afterward.timers}`);
  });

  test('output is captured up to a bound, keeping the tail', async () => {
    const r = await runRemote(host, "head -c 40000 /dev/zero | tr '\\0' x; echo END", { timeoutMs: 10_000, maxOutputBytes: 1024 });
    assert.equal(r.truncated, true);
    assert.equal(r.stdout.length, 1024);
    assert.ok(r.stdout.endsWith('xEND\n'));
  });

  test('connection refused and a wrong key are operator-readable errors', async () => {
    await assert.rejects(runRemote({ ...host, port: 1 }, 'true', { timeoutMs: 5000 }), /127\.0\.0\.1:1: connection refused/);
    await assert.rejects(runRemote({ ...host, key_file: join(sshd.dir, 'host_key') }, 'true', { timeoutMs: 5000 }), /authentication failed with key/);
    await assert.rejects(runRemote({ ...host, key_file: join(work, 'no_such_key') }, 'true', { timeoutMs: 5000 }), /cannot read key_file .*ENOENT/);
  });
});

function resources(): { sockets: number; timers: number } {
  const all = process.getActiveResourcesInfo();
  return { sockets: all.filter((r) => r === 'TCPSocketWrap').length, timers: all.filter((r) => r === 'Timeout').length };
}

// The in-process side needs no sshd: probe and exec are stubs, so these always run.
describe('Watchdog in-process (stub probe and exec)', () => {
  const text = JSON.stringify({
    version: 1,
    classifier: { tie_break: ['general'], default_bucket: 'general' },
    routes: {
      gpu: { url: 'http://gpu.invalid/v1', model: 'm1', runtime: 'vllm', context_tokens: 4096, slots: 1, fallback: 'terminal', recovery: { host: 'h', restart: 'restart-it' } },
      brain: { url: 'http://brain.invalid/v1', model: 'm2', runtime: 'vllm', context_tokens: 4096, slots: 1, fallback: 'terminal', recovery: { managed: false, host: 'h', restart: 'never' } },
    },
    hosts: { h: { address: 'gpu.invalid', user: 'u' } },
    buckets: { general: { route: 'gpu' } },
    watchdog: { restart_after_failures: 1 },
  });
  const compiled = parsePolicyText(text, 'stub.yaml');

  function stubbed(statePath: string, probe: (route: string) => Promise<ProbeResult>, now?: () => number) {
    const commands: string[] = [];
    const log: Array<Record<string, unknown>> = [];
    const logger = pino({ base: null }, { write: (l: string) => log.push(JSON.parse(l)) });
    const wd = new Watchdog({
      policy: () => compiled,
      probe,
      exec: async (_host, command) => {
        commands.push(command);
        return { exitCode: 0, signal: null, stdout: '', stderr: '', truncated: false, timedOut: false, durationMs: 1 };
      },
      log: logger,
      statePath,
      ...(now ? { now } : {}),
    });
    return { wd, commands, log };
  }
  const down = async (): Promise<ProbeResult> => ({ ok: false, busy: false, loading: false, status: 503, cuda: false, error: 'HTTP 503', latencyMs: 1, at: Date.now() });

  test('concurrent runOnce calls share one round; unmanaged routes never reach exec', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hr-wd-stub-'));
    try {
      let probes = 0;
      const { wd, commands, log } = stubbed(join(dir, 'state.json'), () => (probes++, down()));
      const [a, b] = [wd.runOnce(), wd.runOnce()];
      assert.equal(a, b);
      await a;
      assert.equal(probes, 2, 'one probe per route');
      assert.deepEqual(commands, ['restart-it']);
      assert.equal(log.filter((e) => e.event === 'operator_page_required').length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('two watchdogs on one state file (timer and in-process) see each other\'s backoff', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hr-wd-stub-'));
    try {
      const statePath = join(dir, 'state.json');
      const first = stubbed(statePath, down);
      const second = stubbed(statePath, down);
      await second.wd.runOnce(); // restarts (restart_after_failures: 1) and keeps its copy in memory
      assert.deepEqual(second.commands, ['restart-it']);
      const r = await first.wd.runOnce(); // a fresh process: reads the file, inside cooldown
      assert.equal(r.routes.find((x) => x.route === 'gpu')!.result, 'skipped');
      await second.wd.runOnce(); // its memory is stale: the file changed, so it re-reads it
      assert.deepEqual([...first.commands, ...second.commands], ['restart-it'], 'one restart in total');

      rmSync(statePath); // the runbook's "forget the backoff"
      await second.wd.runOnce();
      assert.deepEqual(second.commands, ['restart-it', 'restart-it']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('S24: a route loading its model is not restarted within loading_grace_s, nor a busy one ever; one still loading past it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hr-wd-stub-'));
    try {
      let now = 1_700_000_000_000;
      let loading = true;
      const answer = async (): Promise<ProbeResult> => ({ ok: false, busy: true, loading, status: 503, cuda: false, error: 'HTTP 503: Loading model', latencyMs: 1, at: now });
      const { wd, commands } = stubbed(join(dir, 'state.json'), answer, () => now);
      const gpu = async () => (await wd.runOnce()).routes.find((r) => r.route === 'gpu')!;

      loading = false; // full: answering, every slot taken
      for (let i = 0; i < 3; i++, now += 3_600_000) assert.equal((await gpu()).action, 'none');
      loading = true; // a new load starts: its grace counts from its first answer
      const first = await gpu();
      assert.equal(first.action, 'none');
      assert.deepEqual([first.probe.busy, first.probe.loading], [true, true]);
      assert.equal(first.why, 'loading its model (not an outage for up to 900 s)');
      assert.deepEqual(formatReport({ at: now, state: 'loaded', routes: [first], failed: false } satisfies WatchdogReport)[1]!.split(/\s+/).slice(0, 2), ['gpu', 'loading']);
      now += 899_000;
      assert.equal((await gpu()).action, 'none');
      assert.deepEqual(commands, []);

      now += 1_000; // 900 s of "Loading model": the default loading_grace_s
      const stuck = await gpu();
      assert.equal(stuck.action, 'restart');
      assert.match(stuck.why, /down \(1\/1 failed probes\)/);
      assert.deepEqual(commands, ['restart-it']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a corrupt state file is reported and replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hr-wd-stub-'));
    try {
      const statePath = join(dir, 'state.json');
      writeFileSync(statePath, 'not json {');
      const { wd, log } = stubbed(statePath, down);
      const report = await wd.runOnce();
      assert.equal(report.state, 'corrupt');
      assert.ok(log.some((e) => e.event === 'watchdog_state_reset'));
      assert.equal(JSON.parse(readFileSync(statePath, 'utf8')).routes.gpu.consecutive_failures, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('start() runs rounds on an unref’d timer; stop() waits for the round and clears the timer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hr-wd-stub-'));
    try {
      const baseline = resources().timers;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inRound = new Promise<void>((r) => (entered = r));
      const { wd } = stubbed(join(dir, 'state.json'), async () => {
        entered();
        await gate;
        return down();
      });
      wd.start(1);
      wd.start(1); // a second start is a no-op, not a second timer
      await inRound;
      const stopped = wd.stop();
      let done = false;
      void stopped.then(() => (done = true));
      await Promise.resolve();
      assert.equal(done, false, 'stop() waits for the round in flight');
      release();
      await stopped;
      assert.equal(resources().timers, baseline, 'no timer left after stop()');
      assert.ok(existsSync(join(dir, 'state.json')), 'the round finished and saved');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
