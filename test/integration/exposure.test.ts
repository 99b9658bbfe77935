// What the router gives away and how its admin API refuses odd bodies: admin bodies over the
// limit or compressed get 413/415 (not 500); /stats without the admin token shows no GPU URL
// and no upstream error text; upstream-failures.jsonl keeps no upstream body text unless
// logging.prompts; the off-loopback warning judges the address actually bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { assertSettled, chat, coding, labFor, logLines } from '../helpers/faults.ts';
import { cliEnv, startServe } from '../helpers/cli.ts';

const TOKEN = 'test-admin-token';
const SECRET = 'my-private-prompt-words';

test('admin bodies over the limit → 413, with an unknown encoding → 415, in the envelope', async (t) => {
  const lab = await labFor(t, { adminToken: TOKEN });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const big = await fetch(`${lab.base}/admin/recover-cuda`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ route: 'spark', pad: 'x'.repeat(64 * 1024) }) });
  assert.equal(big.status, 413);
  assert.equal(((await big.json()) as any).error.code, 'payload_too_large');
  const packed = await fetch(`${lab.base}/admin/recover-cuda`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'content-encoding': 'x-unknown' }, body: '{"route":"spark"}' });
  assert.equal(packed.status, 415);
  const body = (await packed.json()) as any;
  assert.equal(body.error.code, 'unsupported_media_type');
  assert.match(body.error.message, /x-unknown/);
  // Body-less admin POSTs (what the CLI sends) are still served.
  const drain = await fetch(`${lab.base}/admin/drain/spark`, { method: 'POST', headers: auth });
  assert.equal(drain.status, 200);
});

/** An upstream that answers every chat with a 500 quoting the prompt, as vLLM's errors can. */
async function echoingUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url?.endsWith('/models')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[]}');
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'error', message: `failed on input: ${body.slice(0, 500)}` }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
}

test('upstream error text stays out of unauthenticated /stats and (with logging.prompts: false) the failure log', async (t) => {
  const up = await echoingUpstream();
  t.after(() => new Promise<void>((r) => up.server.close(() => r())));
  const lab = await labFor(t, { adminToken: TOKEN, routeOverrides: { 'ubuntu-6000': { url: up.url } } });
  const r = await chat(lab, coding(`Refactor this FastAPI endpoint ${SECRET}`));
  assert.equal(r.status, 200, 'failed over');
  assert.notEqual(r.headers.get('x-homelab-route'), 'ubuntu-6000');
  assert.match(lab.svc.states.get('ubuntu-6000')!.health.lastError ?? '', new RegExp(SECRET), 'the router itself keeps the detail');

  const open = (await (await fetch(`${lab.base}/stats`)).json()) as any;
  const text = JSON.stringify(open);
  assert.doesNotMatch(text, new RegExp(SECRET));
  for (const sim of Object.values(lab.sims)) assert.ok(!text.includes(sim.url.replace(/\/v1$/, '')), 'no upstream URL');
  assert.ok(!text.includes(up.url));
  const failed = open.upstreams.find((u: any) => u.route === 'ubuntu-6000');
  assert.equal(failed.url, null);
  assert.match(failed.last_error, /^HTTP 500 \(details with the admin token\)$/);

  const full = (await (await fetch(`${lab.base}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as any;
  const detailed = full.upstreams.find((u: any) => u.route === 'ubuntu-6000');
  assert.equal(detailed.url, up.url);
  assert.match(detailed.last_error, new RegExp(SECRET));

  const failures = (await logLines(lab, 'failures')).filter((l) => l.route === 'ubuntu-6000');
  assert.ok(failures.length > 0, 'the failure is logged');
  for (const line of failures) {
    assert.doesNotMatch(JSON.stringify(line), new RegExp(SECRET));
    assert.match(line.detail, /HTTP 500 \(body not logged: logging\.prompts is false\)/);
  }
  await assertSettled(lab);
});

test('with logging.prompts: true the failure log keeps the upstream text', async (t) => {
  const up = await echoingUpstream();
  t.after(() => new Promise<void>((r) => up.server.close(() => r())));
  const lab = await labFor(t, { routeOverrides: { 'ubuntu-6000': { url: up.url } }, edit: (d) => (d.logging = { prompts: true }) });
  assert.equal((await chat(lab, coding(`Refactor this FastAPI endpoint ${SECRET}`))).status, 200);
  const failures = (await logLines(lab, 'failures')).filter((l) => l.route === 'ubuntu-6000');
  assert.match(failures[0].detail, new RegExp(SECRET));
});

test('the off-loopback warning judges the address bound, not how it was written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-bound-'));
  const policy = join(dir, 'routing_policy.yaml');
  const lab = await labFor(t);
  writeFileSync(policy, lab.policyYaml);
  // 0x7f000001 is 127.0.0.1 written so that no string test recognises it.
  const serve = await startServe(['--policy', policy, '--listen', '0x7f000001:0'], cliEnv({ HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs') }));
  t.after(() => serve.stop());
  assert.doesNotMatch(serve.stderr(), /WARNING/);
  assert.equal((await fetch(`${serve.base}/healthz`)).status, 200);
});
