// The control plane (SPEC §7) against a real lab: token checks, the upstreams view, drain
// semantics on real traffic, method rules, the policy view and recover-cuda's refusals.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Watchdog } from '../../router/recovery/watchdog.ts';
import { leftovers, postJson, startLab, type Lab } from '../helpers/lab.ts';

const TOKEN = 'a3f1c9e07b5d4c2e8f6a1b0d9c7e5f3a';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const CODING = 'Refactor this FastAPI handler';

async function admin(lab: Lab, method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown } = {}) {
  const res = await fetch(`${lab.base}/admin${path}`, {
    method,
    headers: { ...AUTH, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    body: opts.body === undefined ? null : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
}

function chat(lab: Lab, content: string, opts: { model?: string; headers?: Record<string, string> } = {}) {
  return postJson(`${lab.url}/chat/completions`, { model: opts.model ?? 'homelab/auto', messages: [{ role: 'user', content }] }, opts.headers);
}

function hits(lab: Lab): Record<string, number> {
  return Object.fromEntries(Object.entries(lab.sims).map(([name, sim]) => [name, sim.received.length]));
}

function resetSims(lab: Lab): void {
  for (const sim of Object.values(lab.sims)) sim.resetStats();
}

describe('admin API authentication', () => {
  test('with no token configured every admin call is 403 and says how to set one', async (t) => {
    const lab = await startLab();
    t.after(() => lab.close());
    for (const headers of [{}, AUTH]) {
      const r = await admin(lab, 'GET', '/upstreams', { headers });
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'admin_disabled');
      assert.match(r.json.error.message, /HOMELAB_ROUTER_ADMIN_TOKEN/);
    }
    // A mutation is refused the same way and changes nothing.
    assert.equal((await admin(lab, 'POST', '/drain/ubuntu-6000')).status, 403);
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false);
  });

  test('missing, malformed and wrong tokens are 401 with WWW-Authenticate: Bearer; the right one is 200', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());

    const missing = await fetch(`${lab.base}/admin/upstreams`);
    assert.equal(missing.status, 401);
    assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer\b/);
    const body = (await missing.json()) as any;
    assert.equal(body.error.code, 'unauthorized');
    assert.equal(body.error.type, 'authentication_error');
    assert.match(body.error.message, /Authorization: Bearer/);

    const lastByte = TOKEN.slice(0, -1) + (TOKEN.endsWith('a') ? 'b' : 'a');
    const wrong: Array<[string, string]> = [
      ['wrong token', 'Bearer not-the-token'],
      ['wrong only in its last byte', `Bearer ${lastByte}`],
      ['the token with one byte more', `Bearer ${TOKEN}0`],
      ['a prefix of the token', `Bearer ${TOKEN.slice(0, 8)}`],
      ['another scheme', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`],
      ['the bare token', TOKEN],
    ];
    for (const [what, authorization] of wrong) {
      const r = await admin(lab, 'GET', '/upstreams', { headers: { authorization } });
      assert.equal(r.status, 401, what);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/, what);
      assert.equal(r.json.error.code, 'unauthorized', what);
      assert.ok(!JSON.stringify(r.json).includes(TOKEN), `${what}: the answer never echoes the token`);
    }
    // A wrong token cannot drain.
    assert.equal((await admin(lab, 'POST', '/drain/ubuntu-6000', { headers: { authorization: `Bearer ${lastByte}` } })).status, 401);
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false);

    const ok = await admin(lab, 'GET', '/upstreams');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('www-authenticate'), null);
    // The scheme is case-insensitive (RFC 7235).
    assert.equal((await admin(lab, 'GET', '/upstreams', { headers: { authorization: `bearer ${TOKEN}` } })).status, 200);
  });
});

describe('admin API endpoints', () => {
  test('GET /admin/upstreams lists every route with every field of SPEC §7', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());
    const r = await admin(lab, 'GET', '/upstreams');
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json.upstreams));
    const byRoute = new Map<string, any>(r.json.upstreams.map((u: any) => [u.route, u]));
    assert.deepEqual([...byRoute.keys()].sort(), ['spark', 'ubuntu-4090', 'ubuntu-6000', 'win-5090']);
    for (const [name, u] of byRoute) {
      for (const field of ['url', 'model', 'healthy', 'drained', 'in_flight', 'queued', 'slots', 'queue', 'saturated', 'busy_until', 'consecutive_failures', 'last_error', 'last_probe_at', 'latency_ms']) {
        assert.ok(field in u, `${name}.${field} is present`);
      }
      assert.equal(u.url, lab.sims[name]!.url);
      assert.equal(typeof u.model, 'string');
      assert.equal(u.healthy, true);
      assert.equal(u.drained, false);
      assert.equal(u.in_flight, 0);
      assert.equal(u.queued, 0);
      assert.equal(typeof u.slots, 'number');
      assert.equal(typeof u.queue, 'number');
      assert.equal(u.saturated, false);
      assert.equal(u.busy_until, null);
      assert.equal(u.consecutive_failures, 0);
      assert.equal(u.last_error, null);
      // No probe has run in this lab yet.
      assert.equal(u.last_probe_at, null);
      assert.equal(u.latency_ms, null);
    }
    const u6000 = byRoute.get('ubuntu-6000');
    assert.equal(u6000.model, 'glm-4.5-air-awq');
    assert.equal(u6000.slots, 4);
    assert.equal(u6000.queue, 4);

    // After a probe round the probe fields are filled in.
    await lab.svc.health.probeAll();
    const probed = (await admin(lab, 'GET', '/upstreams')).json.upstreams.find((u: any) => u.route === 'ubuntu-6000');
    assert.ok(!Number.isNaN(Date.parse(probed.last_probe_at)), 'last_probe_at is an ISO timestamp');
    assert.equal(typeof probed.latency_ms, 'number');
  });

  test('drain: auto-routed traffic goes down the busy chain, pins still reach the route; DELETE and POST undrain lift it', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());

    const before = await chat(lab, CODING);
    assert.equal(before.status, 200);
    assert.equal(before.headers.get('x-homelab-route'), 'ubuntu-6000');

    const drained = await admin(lab, 'POST', '/drain/ubuntu-6000');
    assert.equal(drained.status, 200);
    assert.deepEqual(drained.json, { route: 'ubuntu-6000', drained: true, in_flight: 0, queued: 0 });
    const view = (await admin(lab, 'GET', '/upstreams')).json.upstreams.find((u: any) => u.route === 'ubuntu-6000');
    assert.equal(view.drained, true);
    assert.equal(view.healthy, true, 'a drain is not a health verdict');

    resetSims(lab);
    const auto = await chat(lab, CODING);
    assert.equal(auto.status, 200);
    assert.equal(auto.headers.get('x-homelab-route'), 'win-5090');
    assert.equal(auto.headers.get('x-homelab-bucket'), 'coding');
    assert.equal(auto.headers.get('x-homelab-reason'), 'ubuntu-6000_drained');
    assert.equal(auto.headers.get('x-homelab-fallback-path'), 'ubuntu-6000>win-5090');
    assert.deepEqual(hits(lab), { 'ubuntu-4090': 0, 'ubuntu-6000': 0, spark: 0, 'win-5090': 1 });

    // Pins pass through a drain: by alias, and by header.
    resetSims(lab);
    const byAlias = await chat(lab, CODING, { model: 'homelab/code' });
    assert.equal(byAlias.status, 200);
    assert.equal(byAlias.headers.get('x-homelab-route'), 'ubuntu-6000');
    assert.equal(byAlias.headers.get('x-homelab-reason'), 'pinned_model');
    const byHeader = await chat(lab, 'hello there', { headers: { 'x-homelab-route': 'ubuntu-6000' } });
    assert.equal(byHeader.status, 200);
    assert.equal(byHeader.headers.get('x-homelab-route'), 'ubuntu-6000');
    assert.equal(byHeader.headers.get('x-homelab-reason'), 'header_route');
    assert.deepEqual(hits(lab), { 'ubuntu-4090': 0, 'ubuntu-6000': 2, spark: 0, 'win-5090': 0 });
    assert.equal(lab.sims['ubuntu-6000']!.received[0]!.body.model, 'glm-4.5-air-awq');

    // DELETE lifts the drain.
    const lifted = await admin(lab, 'DELETE', '/drain/ubuntu-6000');
    assert.equal(lifted.status, 200);
    assert.equal(lifted.json.drained, false);
    resetSims(lab);
    const afterDelete = await chat(lab, CODING);
    assert.equal(afterDelete.headers.get('x-homelab-route'), 'ubuntu-6000');
    assert.equal(afterDelete.headers.get('x-homelab-reason'), 'bucket_match');
    assert.equal(afterDelete.headers.get('x-homelab-fallback-path'), 'ubuntu-6000');

    // So does POST /admin/undrain.
    assert.equal((await admin(lab, 'POST', '/drain/ubuntu-6000')).status, 200);
    assert.equal((await chat(lab, CODING)).headers.get('x-homelab-route'), 'win-5090');
    const undrained = await admin(lab, 'POST', '/undrain/ubuntu-6000');
    assert.equal(undrained.status, 200);
    assert.deepEqual(undrained.json, { route: 'ubuntu-6000', drained: false, in_flight: 0, queued: 0 });
    assert.equal((await chat(lab, CODING)).headers.get('x-homelab-route'), 'ubuntu-6000');

    // The drained gauge follows.
    const metrics = await (await fetch(`${lab.base}/metrics`)).text();
    assert.match(metrics, /^homelab_router_upstream_drained\{route="ubuntu-6000"\} 0$/m);
    assert.deepEqual(leftovers(lab), {});
  });

  test('unknown routes and endpoints are 404; GET on a mutation is 405 and changes nothing', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());

    for (const [method, path] of [['POST', '/drain/ubuntu-600'], ['DELETE', '/drain/nope'], ['POST', '/undrain/nope']] as const) {
      const r = await admin(lab, method, path);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(r.json.error.code, 'not_found');
      assert.match(r.json.error.message, /no route named/i);
      assert.match(r.json.error.message, /ubuntu-6000/, 'the answer lists the routes there are');
    }
    const unknown = await admin(lab, 'GET', '/no-such-endpoint');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'not_found');
    // Unknown admin paths are behind the token too: they do not reveal what exists.
    assert.equal((await fetch(`${lab.base}/admin/no-such-endpoint`)).status, 401);

    for (const path of ['/drain/ubuntu-6000', '/undrain/ubuntu-6000', '/reload-config', '/recover-cuda']) {
      const r = await admin(lab, 'GET', path);
      assert.equal(r.status, 405, `GET ${path}`);
      assert.equal(r.json.error.code, 'method_not_allowed');
      assert.match(r.json.error.message, /POST/);
    }
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false, 'GET /admin/drain did not drain');
    const put = await admin(lab, 'PUT', '/drain/ubuntu-6000');
    assert.equal(put.status, 405);
    assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false);
    assert.equal((await chat(lab, CODING)).headers.get('x-homelab-route'), 'ubuntu-6000');
  });

  test('GET /admin/policy returns the active policy and its hash', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());
    const r = await admin(lab, 'GET', '/policy');
    assert.equal(r.status, 200);
    assert.equal(r.json.hash, lab.svc.policy.hash);
    assert.match(r.json.hash, /\S{8,}/);
    assert.equal(r.json.policy.version, 1);
    assert.deepEqual(Object.keys(r.json.policy.routes).sort(), ['spark', 'ubuntu-4090', 'ubuntu-6000', 'win-5090']);
    assert.equal(r.json.policy.buckets.coding.route, 'ubuntu-6000');
    assert.ok(!Number.isNaN(Date.parse(r.json.loaded_at)));
  });

  test('recover-cuda: 400 without a route, 404 for an unknown route, 422 for an unmanaged one', async (t) => {
    const ran: string[] = [];
    const lab = await startLab({
      adminToken: TOKEN,
      app: (svc) => ({
        recovery: new Watchdog({
          policy: () => svc.policy,
          probe: async () => ({ ok: true, busy: false, loading: false, at: Date.now(), latencyMs: 1, cuda: false }),
          // None of these requests may reach a host: any command run is a failure of this test.
          exec: async (host, command) => {
            ran.push(`${host.address}: ${command}`);
            throw new Error('no command may run in this test');
          },
          log: pino({ level: 'silent' }),
          statePath: join(mkdtempSync(join(tmpdir(), 'hr-wd-')), 'watchdog-state.json'),
        }),
      }),
    });
    t.after(() => lab.close());
    assert.equal(lab.svc.policy.route('spark').recovery?.managed, false, 'the shipped policy leaves spark unmanaged');

    const noBody = await admin(lab, 'POST', '/recover-cuda', { body: {} });
    assert.equal(noBody.status, 400);
    assert.equal(noBody.json.error.param, 'route');

    const unknown = await admin(lab, 'POST', '/recover-cuda', { body: { route: 'ubuntu-600' } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'not_found');

    const unmanaged = await admin(lab, 'POST', '/recover-cuda', { body: { route: 'spark' } });
    assert.equal(unmanaged.status, 422);
    assert.equal(unmanaged.json.error.code, 'route_unmanaged');
    assert.match(unmanaged.json.error.message, /managed: false/);

    const noAuth = await fetch(`${lab.base}/admin/recover-cuda`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ route: 'ubuntu-6000' }) });
    assert.equal(noAuth.status, 401);
    assert.deepEqual(ran, []);
  });
});
