// The `homelab-router` bin as an operator runs it (SPEC §9): check, explain, and the
// running-router commands against a live lab; serve's warning when bound off loopback, and its
// exit when it cannot bind.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { cliEnv, runCli, startServe } from '../helpers/cli.ts';
import { startLab } from '../helpers/lab.ts';
import { freePort } from '../helpers/net.ts';

const TOKEN = 'cli-test-token-7d2a91';

function policyVariant(edit: (doc: any) => void): string {
  const doc = loadYaml(readFileSync(new URL('../../routing_policy.yaml', import.meta.url), 'utf8')) as any;
  edit(doc);
  const file = join(mkdtempSync(join(tmpdir(), 'hr-cli-')), 'routing_policy.yaml');
  writeFileSync(file, dumpYaml(doc));
  return file;
}

function stderrLines(stderr: string): string[] {
  return stderr.split('\n').map((l) => l.trim()).filter(Boolean);
}

describe('homelab-router check', () => {
  test('the shipped policy is valid: exit 0', async () => {
    const r = await runCli(['check', 'routing_policy.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /routing_policy\.yaml: valid \(4 routes, \d+ buckets, \S+\)/);
    assert.equal(r.stderr, '');
  });

  test('a broken policy: exit 1 with each error on its own stderr line', async () => {
    const badRef = policyVariant((doc) => (doc.buckets.coding.route = 'ubuntu-600'));
    const r = await runCli(['check', badRef]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.ok(stderrLines(r.stderr).includes('buckets.coding.route: no route named "ubuntu-600"'), r.stderr);
    assert.match(r.stderr, /1 error$/m);

    const twoKeys = policyVariant((doc) => {
      doc.routes.spark.slotz = 4;
      doc.watchdog.bogus = true;
    });
    const r2 = await runCli(['check', twoKeys]);
    assert.equal(r2.code, 1);
    const lines = stderrLines(r2.stderr);
    assert.ok(lines.includes('routes.spark.slotz: unknown key'), r2.stderr);
    assert.ok(lines.includes('watchdog.bogus: unknown key'), r2.stderr);
    assert.match(r2.stderr, /2 errors$/m);

    const missing = await runCli(['check', join(tmpdir(), 'no-such-policy.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read/);
  });
});

describe('homelab-router explain', () => {
  test('a coding prompt: route ubuntu-6000 and a score table', async () => {
    const r = await runCli(['explain', 'Refactor this FastAPI handler']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^route\s+ubuntu-6000$/m);
    assert.match(r.stdout, /^bucket\s+coding$/m);
    assert.match(r.stdout, /^reason\s+bucket_match$/m);
    assert.match(r.stdout, /^fallback\s+busy: win-5090 .*outage: spark/m);
    assert.match(r.stdout, /^score\s+bucket\s+matched$/m);
    const coding = /^\s*(\d+\.\d\d)\s+coding\s+(.+)$/m.exec(r.stdout);
    assert.ok(coding, r.stdout);
    assert.ok(Number(coding[1]) > 0);
    assert.match(coding[2]!, /refactor/);
    assert.match(coding[2]!, /fastapi/);
  });

  test('--image sends the prompt with an image: ubuntu-4090', async () => {
    const r = await runCli(['explain', '--image', 'what is this']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^route\s+ubuntu-4090$/m);
    assert.match(r.stdout, /^image\s+yes/m);
  });

  test('--json prints the decision as JSON; no prompt is exit 2', async () => {
    const r = await runCli(['explain', '--json', 'Refactor this FastAPI handler']);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout);
    assert.equal(d.route, 'ubuntu-6000');
    assert.equal(d.bucket, 'coding');
    const none = await runCli(['explain']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /explain needs a prompt/);
  });
});

describe('homelab-router drain / undrain / upstreams', () => {
  const withToken = () => cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN });

  test('drain, upstreams and undrain change and show a running router', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());

    const drained = await runCli(['drain', 'ubuntu-6000', '--url', lab.base], { env: withToken() });
    assert.equal(drained.code, 0, drained.stderr);
    assert.equal(drained.stdout.trim(), 'ubuntu-6000: drained (in flight 0, queued 0)');
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, true);

    // The URL may come from the environment instead of --url.
    const table = await runCli(['upstreams'], { env: cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN, HOMELAB_ROUTER_URL: `${lab.base}/` }) });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ROUTE\s+STATE\s+IN FLIGHT\s+QUEUED\s+FAILS\s+LATENCY\s+MODEL\s+LAST ERROR$/);
    assert.equal(lines.length, 5, table.stdout);
    const rows = new Map(lines.slice(1).map((l) => [l.split(/\s+/)[0]!, l.split(/\s{2,}/)]));
    assert.deepEqual([...rows.keys()].sort(), ['spark', 'ubuntu-4090', 'ubuntu-6000', 'win-5090']);
    assert.deepEqual(rows.get('ubuntu-6000')!.slice(0, 4), ['ubuntu-6000', 'drained', '0/4', '0/4']);
    assert.deepEqual(rows.get('spark')!.slice(0, 2), ['spark', 'healthy']);
    assert.ok(rows.get('ubuntu-6000')!.includes('glm-4.5-air-awq'));
    // Columns line up: every row starts its STATE column where the header does.
    const stateCol = lines[0]!.indexOf('STATE');
    for (const l of lines.slice(1)) assert.match(l.slice(stateCol), /^(healthy|drained|UNHEALTHY)/);

    const json = await runCli(['upstreams', '--json', '--url', lab.base], { env: withToken() });
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).upstreams.find((u: any) => u.route === 'ubuntu-6000').drained, true);

    const undrained = await runCli(['undrain', 'ubuntu-6000', '--url', lab.base], { env: withToken() });
    assert.equal(undrained.code, 0, undrained.stderr);
    assert.equal(undrained.stdout.trim(), 'ubuntu-6000: serving (in flight 0, queued 0)');
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false);
  });

  test('missing or wrong token, unknown route, unreachable router: helpful errors and non-zero exits', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());

    const noToken = await runCli(['drain', 'ubuntu-6000', '--url', lab.base]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /HOMELAB_ROUTER_ADMIN_TOKEN is not set/);
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false);
    assert.equal((await runCli(['upstreams', '--url', lab.base])).code, 2);

    const wrong = await runCli(['drain', 'ubuntu-6000', '--url', lab.base], { env: cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: 'wrong' }) });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^401: The admin token is wrong\./m);
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false);

    const unknown = await runCli(['drain', 'ubuntu-600', '--url', lab.base], { env: withToken() });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^404: No route named "ubuntu-600"/m);

    const noRoute = await runCli(['drain', '--url', lab.base], { env: withToken() });
    assert.equal(noRoute.code, 2);
    assert.match(noRoute.stderr, /usage: homelab-router drain <route>/);

    const down = await runCli(['upstreams', '--url', `http://127.0.0.1:${await freePort()}`], { env: withToken() });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach the router at http:\/\/127\.0\.0\.1:\d+/);
  });
});

describe('homelab-router serve', () => {
  test('an address it cannot take: exit 1 with the reason, nothing left running; a malformed --listen: exit 2', async (t) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    t.after(() => taken.close());
    const port = (taken.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'hr-serve-'));
    const env = cliEnv({ HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs'), HOMELAB_ROUTER_DATA_DIR: join(dir, 'data') });

    // Before binding came first, the router kept probing and watching without serving anyone,
    // and never exited: runCli's deadline turns that into a failure here.
    const inUse = await runCli(['serve', '--policy', 'routing_policy.yaml', '--listen', `127.0.0.1:${port}`], { env, timeoutMs: 15_000 });
    assert.equal(inUse.code, 1, inUse.stderr);
    assert.equal(inUse.stderr.trim(), `cannot listen on 127.0.0.1:${port}: the address is already in use (another homelab-router, or another service on that port?)`);
    assert.doesNotMatch(inUse.stdout, /homelab-router listening/);

    for (const bad of ['4000', '127.0.0.1:', '127.0.0.1:70000', 'host:port']) {
      const r = await runCli(['serve', '--policy', 'routing_policy.yaml', '--listen', bad], { env, timeoutMs: 15_000 });
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), `--listen "${bad}" is not HOST:PORT (for example 127.0.0.1:4000, or [::1]:4000 for IPv6; port 0 to 65535)`);
    }
  });

  test('warns loudly when bound off loopback, and not on loopback', async (t) => {
    const lab = await startLab();
    t.after(() => lab.close());
    const dir = mkdtempSync(join(tmpdir(), 'hr-serve-'));
    const policy = join(dir, 'routing_policy.yaml');
    writeFileSync(policy, lab.policyYaml);
    const env = cliEnv({ HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs'), HOMELAB_ROUTER_DATA_DIR: join(dir, 'data') });

    const loopback = await startServe(['--policy', policy, '--listen', '127.0.0.1:0'], env);
    t.after(() => loopback.stop());
    assert.doesNotMatch(loopback.stderr(), /WARNING/);
    assert.match(loopback.stdout(), /HOMELAB_ROUTER_ADMIN_TOKEN is not set/);
    assert.equal((await fetch(`${loopback.base}/admin/upstreams`)).status, 403);

    const open = await startServe(['--policy', policy, '--listen', '0.0.0.0:0'], env);
    t.after(() => open.stop());
    assert.match(open.stderr(), /^WARNING: homelab-router is listening on 0\.0\.0\.0, not loopback\./m);
    // auth.mode open (the default) off loopback: anyone on that network can use the GPUs.
    assert.match(open.stderr(), /^WARNING: auth\.mode is open: any client that reaches 0\.0\.0\.0 can use every GPU without a key\./m);
  });
});

describe('homelab-router --help and bad flags', () => {
  test('--help lists every command, explain --json and init included; a bad flag is exit 2 with the usage', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}explain \[--policy P\] \[--image\] \[--json\] "prompt"$/m);
    assert.match(help.stdout, /^ {2}init --upstream NAME=URL \[\.\.\.\] \[--api-key-env NAME=VARIABLE\] \[--out FILE\] \[--force\]$/m);
    for (const verb of ['serve', 'demo', 'check', 'watchdog --once', 'drain', 'upstreams']) assert.match(help.stdout, new RegExp(`^  ${verb}`, 'm'), verb);

    // Before, an unknown flag was a stack-less exit 1 with no hint of the right ones.
    const bad = await runCli(['explain', '--imag', 'hello']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Unknown option '--imag'/);
    assert.match(bad.stderr, /usage: homelab-router <command>/);
  });
});
