// `homelab-router demo` as a newcomer runs it: the banner's commands target the port it really
// uses; drain, spill target, failover with the watchdog's restart, CUDA poisoning and its
// recovery, the camera path succeeding and escalating, tool calls; a port it cannot take is
// exit 1, a bad flag exit 2; its temp directory is gone when it exits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { BIN, REPO, cliEnv, runCli } from '../helpers/cli.ts';
import { pollUntil } from '../helpers/poll.ts';

const TOKEN = 'demo-test-token-51c0';

/** A private TMPDIR for the demo, so what it leaves behind (nothing) can be seen. */
function privateTmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-demo-tmp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The demo's own temp directories (tsx, running the sources, keeps its cache there too). */
function demoDirs(tmp: string): string[] {
  return readdirSync(tmp).filter((f) => f.startsWith('homelab-router-demo-'));
}

async function startDemo(t: TestContext, tmp: string) {
  const child = spawn(process.execPath, [BIN, 'demo', '--port', '0'], { cwd: REPO, env: cliEnv({ TMPDIR: tmp, HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const base = await pollUntil('the demo banner', () => {
    if (child.exitCode !== null) throw new Error(`demo exited ${child.exitCode}\n${out}\n${err}`);
    return /homelab-router demo on (http:\/\/127\.0\.0\.1:\d+):/.exec(out)?.[1];
  }, { tries: 300, everyMs: 100 });
  return { base, child, exited, out: () => out };
}

async function chat(base: string, body: unknown): Promise<{ status: number; route: string | null; reason: string | null; synthetic: string | null; json: any }> {
  const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, route: res.headers.get('x-homelab-route'), reason: res.headers.get('x-homelab-reason'), synthetic: res.headers.get('x-homelab-synthetic'), json: await res.json() };
}

async function control(base: string, verb: string, route: string): Promise<void> {
  const res = await fetch(`${base}/demo/${verb}/${route}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200, await res.text());
}

const CODING = { model: 'homelab/auto', messages: [{ role: 'user', content: 'Refactor this python function' }] };
const SCHEMA = { type: 'object', properties: { person: { type: 'boolean' }, summary: { type: 'string' } }, required: ['person', 'summary'], additionalProperties: false };
const CAMERA = {
  model: 'homelab/auto',
  messages: [{ role: 'user', content: 'Frigate event: motion on the driveway camera. Is there a person?' }],
  response_format: { type: 'json_schema', json_schema: { name: 'camera_event', schema: SCHEMA } },
};

test('demo: every promise of the walkthrough, on the port it really uses; nothing left in TMPDIR', async (t) => {
  const tmp = privateTmp(t);
  const demo = await startDemo(t, tmp);
  const { base } = demo;
  // The banner's commands target this port, and the running-router commands find it through HOMELAB_ROUTER_URL.
  assert.doesNotMatch(demo.out(), /:4000/);
  assert.match(demo.out(), new RegExp(`export HOMELAB_ROUTER_URL=${base}`));
  const env = cliEnv({ HOMELAB_ROUTER_URL: base, HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN });

  assert.equal((await chat(base, CODING)).route, 'ubuntu-6000');
  // The controls are the admin's: no token, no effect.
  const anonymous = await fetch(`${base}/demo/break/ubuntu-6000`, { method: 'POST' });
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();
  const state = (await (await fetch(`${base}/demo`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as any;
  assert.deepEqual(state.sims.map((s: any) => [s.route, s.state]), [['ubuntu-4090', 'up'], ['ubuntu-6000', 'up'], ['spark', 'up'], ['win-5090', 'up']]);

  // Drain: auto traffic moves to the busy fallback; undrain brings it back.
  assert.equal((await runCli(['drain', 'ubuntu-6000'], { env })).code, 0);
  const drained = await chat(base, CODING);
  assert.deepEqual([drained.status, drained.route, drained.reason], [200, 'win-5090', 'ubuntu-6000_drained']);
  assert.equal((await runCli(['undrain', 'ubuntu-6000'], { env })).code, 0);

  // Tool calls.
  const tools = await chat(base, { ...CODING, messages: [{ role: 'user', content: 'weather in Paris?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }] });
  assert.equal(tools.route, 'ubuntu-6000');
  assert.equal(tools.json.choices[0].finish_reason, 'tool_calls');
  assert.equal(tools.json.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.equal(typeof JSON.parse(tools.json.choices[0].message.tool_calls[0].function.arguments).city, 'string');

  // The camera path succeeds with schema-valid JSON, escalates once, then answers synthetically.
  const ok = await chat(base, CAMERA);
  assert.deepEqual([ok.status, ok.route, ok.synthetic], [200, 'ubuntu-4090', null]);
  assert.deepEqual(Object.keys(JSON.parse(ok.json.choices[0].message.content)).sort(), ['person', 'summary']);
  await control(base, 'bad-json', 'ubuntu-4090');
  const escalated = await chat(base, CAMERA);
  assert.deepEqual([escalated.route, escalated.reason, escalated.synthetic], ['spark', 'escalated_invalid_json', null]);
  await control(base, 'bad-json', 'ubuntu-4090');
  await control(base, 'bad-json', 'spark');
  const synthetic = await chat(base, CAMERA);
  assert.equal(synthetic.synthetic, '1');
  assert.equal(JSON.parse(synthetic.json.choices[0].message.content).escalate_to_spark, true);

  // Failover: a broken GPU's traffic goes to spark at once; the watchdog restarts it.
  await control(base, 'break', 'ubuntu-6000');
  const failed = await chat(base, CODING);
  assert.deepEqual([failed.status, failed.route, failed.reason], [200, 'spark', 'ubuntu-6000_outage']);
  const upstream = async () => {
    const r = await runCli(['upstreams', '--json'], { env });
    return JSON.parse(r.stdout).upstreams.find((u: any) => u.route === 'ubuntu-6000');
  };
  await pollUntil('the watchdog to restart ubuntu-6000', async () => ((await upstream()).healthy && (await chat(base, CODING)).route === 'ubuntu-6000' ? true : undefined), { tries: 60, everyMs: 500 });

  // CUDA poisoning: failover, then the watchdog's recovery.cuda brings it back.
  await control(base, 'cuda', 'ubuntu-4090');
  const poisoned = await chat(base, { model: 'homelab/auto', messages: [{ role: 'user', content: 'classify this as spam or not: win a prize' }] });
  assert.equal(poisoned.status, 200);
  assert.notEqual(poisoned.route, 'ubuntu-4090');
  await pollUntil('the watchdog to reset the GPU of ubuntu-4090', async () => ((await chat(base, CAMERA)).route === 'ubuntu-4090' ? true : undefined), { tries: 60, everyMs: 500 });

  demo.child.kill('SIGTERM');
  assert.equal(await demo.exited, 0);
  assert.deepEqual(demoDirs(tmp), [], 'the demo removed its temp directory');
});

test('demo: a port it cannot take is exit 1 with the reason, and nothing is left; --port abc is exit 2', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const port = (taken.address() as AddressInfo).port;
  const tmp = privateTmp(t);
  const r = await runCli(['demo', '--port', String(port)], { env: cliEnv({ TMPDIR: tmp }), timeoutMs: 30_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
  assert.deepEqual(demoDirs(tmp), []);

  for (const bad of ['abc', '70000', '4000x']) {
    const b = await runCli(['demo', '--port', bad]);
    assert.equal(b.code, 2, `${bad}: ${b.stderr}`);
    assert.match(b.stderr, /is not a port number/);
    assert.match(b.stderr, /usage: homelab-router <command>/);
  }
});
