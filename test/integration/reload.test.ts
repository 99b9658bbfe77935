// Policy reload (SPEC §6): through POST /admin/reload-config on an in-process lab, and through
// the file watcher of the real `homelab-router serve` when an editor renames a file over the
// policy. Atomic swap, named errors, no-op on an identical file, in-flight requests finishing
// on the policy and route they started with, and kept state for unchanged routes.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { LOG_FILES } from '../../router/obs/logs.ts';
import { cliEnv, startServe } from '../helpers/cli.ts';
import { leftovers, postJson, readJsonLines, startLab, type Lab } from '../helpers/lab.ts';
import { pollUntil } from '../helpers/poll.ts';
import { sampleSum, scrape } from '../helpers/prom.ts';

const TOKEN = 'reload-test-token-5b0c2f7e';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const CODING = 'Refactor this FastAPI handler';
const CHAT = 'Tell me a joke about cats';

function chat(base: string, content: string) {
  return postJson(`${base}/v1/chat/completions`, { model: 'homelab/auto', messages: [{ role: 'user', content }] });
}

function reload(base: string) {
  return postJson(`${base}/admin/reload-config`, '', AUTH);
}

async function policyHash(base: string): Promise<string> {
  const res = await fetch(`${base}/admin/policy`, { headers: AUTH });
  assert.equal(res.status, 200);
  return ((await res.json()) as { hash: string }).hash;
}

/** The lab's policy with `edit` applied, as YAML. */
function edited(lab: Lab, edit: (doc: any) => void): string {
  const doc = loadYaml(lab.policyYaml) as any;
  edit(doc);
  return dumpYaml(doc);
}

async function reloads(base: string): Promise<Record<'ok' | 'invalid' | 'unchanged', number | null>> {
  const text = await scrape(base);
  const of = (result: string) => sampleSum(text, 'homelab_router_policy_reloads_total', { result });
  return { ok: of('ok'), invalid: of('invalid'), unchanged: of('unchanged') };
}

interface Gate {
  url: string;
  /** Models of the requests received so far, in arrival order. */
  received: string[];
  waitFor(n: number): Promise<void>;
  /** Answers every request held so far and every later one at once. */
  open(): void;
  close(): Promise<void>;
}

// An upstream that holds every chat request until the test opens it, so a request is
// provably in flight while the policy changes under it.
async function startGate(): Promise<Gate> {
  const received: string[] = [];
  const held: Array<() => void> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let opened = false;
  const answer = (res: ServerResponse, model: string) => () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      id: `chatcmpl-gate-${received.length}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: `held reply from ${model}` }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
    }));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [] }));
        return;
      }
      const model = String((JSON.parse(Buffer.concat(parts).toString('utf8')) as { model?: unknown }).model);
      received.push(model);
      for (let i = waiters.length - 1; i >= 0; i--) if (received.length >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve();
      const reply = answer(res, model);
      if (opened) reply();
      else held.push(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    received,
    waitFor: (n) => (received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    open() {
      opened = true;
      for (const reply of held.splice(0)) reply();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('POST /admin/reload-config', () => {
  test('a valid file is swapped in: 200 with the new hash and the changed keys, and routing follows it', async (t) => {
    const lab = await startLab({ adminToken: TOKEN, policyFile: true });
    t.after(() => lab.close());
    const h0 = await policyHash(lab.base);
    assert.equal((await chat(lab.base, CODING)).headers.get('x-homelab-route'), 'ubuntu-6000');

    writeFileSync(lab.policyPath!, edited(lab, (doc) => (doc.buckets.coding.route = 'spark')));
    const r = await reload(lab.base);
    assert.equal(r.status, 200, r.text);
    assert.notEqual(r.json.hash, h0);
    assert.equal(r.json.previous_hash, h0);
    assert.equal(r.json.result, 'ok');
    assert.deepEqual(r.json.changed, ['buckets.coding']);
    assert.equal(await policyHash(lab.base), r.json.hash);

    for (const sim of Object.values(lab.sims)) sim.resetStats();
    const after = await chat(lab.base, CODING);
    assert.equal(after.status, 200);
    assert.equal(after.headers.get('x-homelab-route'), 'spark');
    assert.equal(lab.sims.spark!.received.length, 1);
    assert.equal(lab.sims['ubuntu-6000']!.received.length, 0);
    assert.deepEqual(await reloads(lab.base), { ok: 1, invalid: 0, unchanged: 0 });
  });

  test('an invalid file changes nothing: 400 naming the key, the running hash and traffic unaffected', async (t) => {
    const lab = await startLab({ adminToken: TOKEN, policyFile: true });
    t.after(() => lab.close());
    const h0 = await policyHash(lab.base);
    const statesBefore = lab.svc.states.all();

    const cases: Array<[string, string, string]> = [
      ['unknown key', edited(lab, (doc) => (doc.routes['ubuntu-6000'].slotz = 4)), 'routes.ubuntu-6000.slotz: unknown key'],
      ['bad route reference', edited(lab, (doc) => (doc.buckets.coding.route = 'ubuntu-600')), 'buckets.coding.route: no route named "ubuntu-600"'],
      ['not YAML', 'routes: [unclosed\n', '(yaml)'],
    ];
    for (const [what, text, expected] of cases) {
      writeFileSync(lab.policyPath!, text);
      const r = await reload(lab.base);
      assert.equal(r.status, 400, what);
      assert.equal(r.json.error.code, 'invalid_request', what);
      assert.ok(r.json.errors.some((e: string) => e.startsWith(expected)), `${what}: ${JSON.stringify(r.json.errors)}`);
      assert.ok(r.json.error.message.includes(expected), `${what}: the message names the key: ${r.json.error.message}`);
      assert.match(r.json.error.message, /running policy is unchanged/);
      assert.equal(r.json.hash, h0, what);
      assert.equal(await policyHash(lab.base), h0, what);
      const res = await chat(lab.base, CODING);
      assert.equal(res.status, 200, what);
      assert.equal(res.headers.get('x-homelab-route'), 'ubuntu-6000', what);
    }
    assert.ok(lab.svc.states.all().every((r, i) => r === statesBefore[i]), 'no route state was rebuilt');
    assert.deepEqual(await reloads(lab.base), { ok: 0, invalid: 3, unchanged: 0 });
  });

  test('a file identical to the running policy is a no-op: changed [] and every route keeps its state', async (t) => {
    const lab = await startLab({ adminToken: TOKEN, policyFile: true });
    t.after(() => lab.close());
    const h0 = await policyHash(lab.base);
    const states = new Map(lab.svc.states.all().map((r) => [r.name, r]));
    lab.svc.states.get('win-5090')!.drained = true;

    // The same policy written out again, with a comment and keys in another order.
    const doc = loadYaml(lab.policyYaml) as Record<string, unknown>;
    const reordered = Object.fromEntries(Object.entries(doc).reverse());
    writeFileSync(lab.policyPath!, `# saved again by an editor\n${dumpYaml(reordered)}`);
    const r = await reload(lab.base);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.changed, []);
    assert.equal(r.json.result, 'unchanged');
    assert.equal(r.json.hash, h0);
    assert.equal(r.json.previous_hash, h0);
    for (const rt of lab.svc.states.all()) assert.equal(rt, states.get(rt.name), `${rt.name} kept its RouteRuntime`);
    assert.equal(lab.svc.states.get('win-5090')!.drained, true);

    // The byte-identical file too.
    writeFileSync(lab.policyPath!, lab.policyYaml);
    assert.deepEqual((await reload(lab.base)).json.changed, []);
    assert.deepEqual(await reloads(lab.base), { ok: 0, invalid: 0, unchanged: 2 });
  });

  test('in-flight requests finish on the policy and route they started with; unchanged routes keep their runtime', async (t) => {
    const gate = await startGate();
    t.after(() => gate.close());
    const lab = await startLab({ adminToken: TOKEN, policyFile: true, routeOverrides: { 'ubuntu-6000': { url: gate.url }, 'win-5090': { url: gate.url } } });
    t.after(() => lab.close());
    const h0 = lab.svc.policy.hash;

    // One held request on the route whose settings will change, one on a route that stays.
    const coding = chat(lab.base, CODING);
    const small = chat(lab.base, CHAT);
    await gate.waitFor(2);
    const old6000 = lab.svc.states.get('ubuntu-6000')!;
    const old5090 = lab.svc.states.get('win-5090')!;
    assert.equal(old6000.admission.inFlight, 1);
    assert.equal(old5090.admission.inFlight, 1);

    writeFileSync(lab.policyPath!, edited(lab, (doc) => {
      doc.buckets.coding.route = 'spark';
      doc.routes['ubuntu-6000'].timeout_ms = 45_000;
    }));
    const r = await reload(lab.base);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.changed, ['buckets.coding', 'routes.ubuntu-6000']);

    // The changed route has a new runtime that keeps counting the request it already admitted
    // (SPEC §6: never more than slots on the upstream); the unchanged one is the same object.
    const new6000 = lab.svc.states.get('ubuntu-6000')!;
    assert.notEqual(new6000, old6000);
    assert.equal(new6000.admission.inFlight, 1);
    assert.equal(new6000.config.timeout_ms, 45_000);
    assert.equal(lab.svc.states.get('win-5090'), old5090);
    const view = (await (await fetch(`${lab.base}/admin/upstreams`, { headers: AUTH })).json()) as { upstreams: Array<{ route: string; in_flight: number }> };
    assert.equal(view.upstreams.find((u) => u.route === 'win-5090')!.in_flight, 1);
    assert.equal(view.upstreams.find((u) => u.route === 'ubuntu-6000')!.in_flight, 1);

    // New traffic follows the new policy while the old requests are still held.
    const fresh = await chat(lab.base, CODING);
    assert.equal(fresh.status, 200);
    assert.equal(fresh.headers.get('x-homelab-route'), 'spark');

    gate.open();
    const [c, s] = await Promise.all([coding, small]);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.headers.get('x-homelab-route'), 'ubuntu-6000');
    assert.equal(c.json.choices[0].message.content, 'held reply from glm-4.5-air-awq');
    assert.equal(s.status, 200, s.text);
    assert.equal(s.headers.get('x-homelab-route'), 'win-5090');
    assert.deepEqual([...gate.received].sort(), ['gemma-4-31b', 'glm-4.5-air-awq'], 'nothing was retried elsewhere');

    // The held coding request is logged under the policy it started with.
    const decisions = await pollUntil('three decision lines', () => {
      lab.svc.logs.flush();
      const lines = readJsonLines(join(lab.logDir, LOG_FILES.decisions));
      return lines.length >= 3 ? lines : undefined;
    });
    const held = decisions.find((d) => d.route === 'ubuntu-6000');
    assert.equal(held.policy_hash, h0);
    assert.equal(held.status, 200);
    assert.equal(decisions.find((d) => d.route === 'spark').policy_hash, r.json.hash);

    await pollUntil('every slot to be released', () => (old6000.admission.inFlight === 0 && Object.keys(leftovers(lab)).length === 0 ? true : undefined));
  });

  test('an unchanged route keeps its health across a reload; a changed route keeps it too', async (t) => {
    const lab = await startLab({ adminToken: TOKEN, policyFile: true });
    t.after(() => lab.close());
    lab.sims['win-5090']!.setHealth('down');
    lab.sims['ubuntu-6000']!.setHealth('down');
    await lab.svc.health.probeAll();
    const win = lab.svc.states.get('win-5090')!;
    const old6000 = lab.svc.states.get('ubuntu-6000')!;
    assert.equal(win.health.consecutiveFailures, 1);
    assert.equal(old6000.health.consecutiveFailures, 1);
    assert.notEqual(win.health.lastError, null);
    const winHealth = { ...win.health };

    writeFileSync(lab.policyPath!, edited(lab, (doc) => (doc.routes['ubuntu-6000'].queue = 2)));
    // Called directly: the state is read before the probe round that a reload starts can finish.
    const result = lab.svc.reloadFromFile();
    assert.deepEqual(result.changed, ['routes.ubuntu-6000']);
    assert.equal(lab.svc.states.get('win-5090'), win);
    assert.deepEqual(win.health, winHealth);
    const new6000 = lab.svc.states.get('ubuntu-6000')!;
    assert.notEqual(new6000, old6000);
    assert.equal(new6000.health.consecutiveFailures, 1);
    assert.notEqual(new6000.health.lastError, null);
    assert.equal(new6000.config.queue, 2);
    // Let the probe round the reload started finish before the lab closes.
    await lab.svc.health.probeAll();
  });
});

describe('policy file watcher (homelab-router serve)', () => {
  test('a policy replaced by rename is picked up; an invalid one is refused and counted', async (t) => {
    const lab = await startLab();
    t.after(() => lab.close());
    const dir = mkdtempSync(join(tmpdir(), 'hr-watch-'));
    const policyPath = join(dir, 'routing_policy.yaml');
    writeFileSync(policyPath, lab.policyYaml);
    const router = await startServe(['--policy', policyPath, '--listen', '127.0.0.1:0'], cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN, HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs'), HOMELAB_ROUTER_DATA_DIR: join(dir, 'data') }));
    t.after(() => router.stop());

    const h0 = await policyHash(router.base);
    assert.equal((await chat(router.base, CODING)).headers.get('x-homelab-route'), 'ubuntu-6000');

    // What editors and config-management tools do: write a temp file, rename it over.
    const replace = (text: string) => {
      const tmp = join(dir, `.routing_policy.yaml.${process.pid}.tmp`);
      writeFileSync(tmp, text);
      renameSync(tmp, policyPath);
    };
    replace(edited(lab, (doc) => (doc.buckets.coding.route = 'spark')));
    const h1 = await pollUntil('the watcher to swap the policy', async () => {
      const h = await policyHash(router.base);
      return h !== h0 ? h : undefined;
    });
    assert.equal((await chat(router.base, CODING)).headers.get('x-homelab-route'), 'spark');
    assert.deepEqual(await reloads(router.base), { ok: 1, invalid: 0, unchanged: 0 });

    replace(edited(lab, (doc) => (doc.buckets.coding.route = 'ubuntu-600')));
    await pollUntil('the invalid file to be counted', async () => ((await reloads(router.base)).invalid === 1 ? true : undefined));
    assert.equal(await policyHash(router.base), h1);
    assert.equal((await chat(router.base, CODING)).headers.get('x-homelab-route'), 'spark');
    assert.match(router.stdout(), /policy file changed but is invalid/);
    assert.match(router.stdout(), /buckets\.coding\.route: no route named \\?"ubuntu-600\\?"/);

    // Putting the running policy back (a rename again) is seen and changes nothing.
    replace(edited(lab, (doc) => (doc.buckets.coding.route = 'spark')));
    await pollUntil('the identical file to be seen', async () => ((await reloads(router.base)).unchanged === 1 ? true : undefined));
    assert.equal(await policyHash(router.base), h1);
    assert.deepEqual(await reloads(router.base), { ok: 1, invalid: 1, unchanged: 1 });
  });
});
