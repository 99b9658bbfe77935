// Per-application keys (SPEC §12) against a real lab: a real router on 127.0.0.1, simulated
// upstreams, keys.db a real SQLite file in a temp data dir. Every row of the §12 tables, the
// three ways to present a key, limits under concurrency, settlement on every path, restarts,
// and rotation and revocation taking effect without one.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { LocalKeyLimits } from '../../router/keys/limits.ts';
import { leftovers, postJson, readJsonLines, startLab, type Lab, type LabOptions } from '../helpers/lab.ts';
import { pollUntil } from '../helpers/poll.ts';
import { parseExposition } from '../helpers/prom.ts';

const TOKEN = 'b7e2d94c1a0f4e6b8c3d5a7f9e1b2c4d';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const KEY_FORMAT = /^hlr_[0-9A-Za-z]{43}$/;

function keysLab(mode: 'open' | 'keys', opts: LabOptions = {}): Promise<Lab> {
  return startLab({
    adminToken: TOKEN,
    ...opts,
    edit: (doc) => {
      doc.auth = { ...(doc.auth ?? {}), mode };
      opts.edit?.(doc);
    },
  });
}

async function admin(lab: Lab, method: string, path: string, body?: unknown, headers: Record<string, string> = AUTH) {
  const res = await fetch(`${lab.base}/admin${path}`, { method, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? null : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null, text };
}

async function createKey(lab: Lab, body: Record<string, unknown>): Promise<{ id: string; key: string; name: string }> {
  const r = await admin(lab, 'POST', '/keys', body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

function chat(lab: Lab, headers: Record<string, string>, extra: Record<string, unknown> = {}) {
  return postJson(`${lab.url}/chat/completions`, { model: 'homelab/fast', messages: [{ role: 'user', content: 'x'.repeat(40) }], ...extra }, headers);
}

function upstreamHits(lab: Lab): number {
  return Object.values(lab.sims).reduce((n, s) => n + s.received.length, 0);
}

async function keyView(lab: Lab, id: string): Promise<any> {
  const r = await admin(lab, 'GET', '/keys');
  return r.json.keys.find((k: any) => k.id === id);
}

function limits(lab: Lab): LocalKeyLimits {
  return lab.svc.keys.limits as LocalKeyLimits;
}

/** Waits until the key holds no in-flight place and no reservation: nothing leaked. */
function settled(lab: Lab, id: string): Promise<true> {
  return pollUntil(`key ${id} to hold nothing`, () => {
    const h = limits(lab).held(id);
    return h.inFlight === 0 && h.reserved === 0 ? true : undefined;
  });
}

describe('keys: presenting a key (SPEC §12 first table, 401 rows)', () => {
  test('auth.mode keys: no key, an unknown key, a malformed key → 401 invalid_api_key in the OpenAI envelope, no upstream called', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    for (const headers of [{}, bearer('hlr_' + 'A'.repeat(43)), bearer('sk-not-ours'), { 'x-api-key': 'nope' }]) {
      const r = await chat(lab, headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.json.error.code, 'invalid_api_key');
      assert.equal(r.json.error.type, 'authentication_error');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.ok(r.headers.get('x-request-id'));
    }
    // Every /v1 endpoint, the catalogue and explain included.
    assert.equal((await fetch(`${lab.url}/models`)).status, 401);
    assert.equal((await postJson(`${lab.url}/route/explain`, { model: 'homelab/auto', messages: [{ role: 'user', content: 'hi' }] })).status, 401);
    assert.equal((await postJson(`${lab.url}/embeddings`, { model: 'homelab/auto', input: 'hi' })).status, 401);
    assert.equal(upstreamHits(lab), 0);
    // The probes are not /v1: they stay open.
    assert.equal((await fetch(`${lab.base}/healthz`)).status, 200);
  });

  test('a key is accepted as Authorization: Bearer, as x-api-key and as the password of HTTP Basic', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key } = await createKey(lab, { name: 'ide' });
    assert.match(key, KEY_FORMAT);
    const basic = 'Basic ' + Buffer.from(`anything:${key}`).toString('base64');
    for (const headers of [bearer(key), { 'x-api-key': key }, { authorization: basic }]) {
      const r = await chat(lab, headers);
      assert.equal(r.status, 200, `${JSON.stringify(Object.keys(headers))}: ${r.text}`);
    }
    assert.equal(upstreamHits(lab), 3);
    // A wrong Basic password is refused like any unknown key.
    const wrong = await chat(lab, { authorization: 'Basic ' + Buffer.from(`anything:${key}x`).toString('base64') });
    assert.equal(wrong.status, 401);
  });

  test('auth.mode open (the default): no key and foreign keys pass; an hlr_ key is still checked and limited', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());
    assert.equal(lab.svc.policy.doc.auth.mode, 'open');
    assert.equal((await chat(lab, {})).status, 200);
    assert.equal((await chat(lab, bearer('sk-anything'))).status, 200);
    assert.equal((await chat(lab, bearer('hlr_' + 'B'.repeat(43)))).status, 401);
    const { key, id } = await createKey(lab, { name: 'bot', models: ['homelab/chat'] });
    assert.equal((await chat(lab, bearer(key))).json.error.code, 'model_not_allowed');
    assert.equal((await keyView(lab, id)).requests_month, 0);
  });

  test('an expired key is refused with 401; an expiry set by PATCH applies to the next request', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const old = await createKey(lab, { name: 'old', expires_at: '2020-01-01T00:00:00Z' });
    const r = await chat(lab, bearer(old.key));
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'invalid_api_key');
    assert.match(r.json.error.message, /expired/);
    const live = await createKey(lab, { name: 'live', expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    assert.equal((await chat(lab, bearer(live.key))).status, 200);
    assert.equal((await admin(lab, 'PATCH', `/keys/${live.id}`, { expires_at: '2021-06-01T00:00:00Z' })).status, 200);
    assert.equal((await chat(lab, bearer(live.key))).status, 401);
    assert.equal(upstreamHits(lab), 1);
  });
});

describe('keys: allowlists (403 model_not_allowed)', () => {
  test('models: exact names and * globs; a refused request reaches no upstream and costs no rpm', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key, id } = await createKey(lab, { name: 'discord', models: ['homelab/chat', 'qwen*'], rpm: 2 });
    for (let i = 0; i < 3; i++) {
      const r = await chat(lab, bearer(key), { model: 'homelab/auto' });
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'model_not_allowed');
      assert.equal(r.json.error.type, 'permission_error');
      assert.match(r.json.error.message, /discord.*homelab\/auto/);
    }
    assert.equal(upstreamHits(lab), 0);
    // Explain checks the model too (it calls nothing, but says what the key may not do).
    assert.equal((await postJson(`${lab.url}/route/explain`, { model: 'homelab/code', messages: [{ role: 'user', content: 'hi' }] }, bearer(key))).status, 403);
    // The refusals took no rpm: both requests of the minute are still there.
    assert.equal((await chat(lab, bearer(key), { model: 'homelab/chat' })).status, 200);
    assert.equal((await chat(lab, bearer(key), { model: 'qwen2.5-vl-7b-router-awq' })).status, 200);
    assert.equal((await chat(lab, bearer(key), { model: 'homelab/chat' })).json.error.code, 'rate_limited');
    // The catalogue lists what the key may use.
    const lister = await createKey(lab, { name: 'lister', models: ['homelab/chat', 'qwen*'] });
    const models = (await (await fetch(`${lab.url}/models`, { headers: bearer(lister.key) })).json()) as any;
    assert.deepEqual(models.data.map((m: any) => m.id), ['homelab/chat', 'qwen2.5-vl-7b-router-awq', 'qwen3.6-35b-a3b-fp8']);
    await settled(lab, id);
  });

  test('routing headers cannot lead a key past its models: x-homelab-route to another route, x-homelab-bucket without homelab/auto', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key, id } = await createKey(lab, { name: 'narrow', models: ['homelab/chat'] });
    const pinSpark = await chat(lab, { ...bearer(key), 'x-homelab-route': 'spark' }, { model: 'homelab/chat' });
    assert.equal(pinSpark.status, 403);
    assert.equal(pinSpark.json.error.code, 'model_not_allowed');
    const bucket = await chat(lab, { ...bearer(key), 'x-homelab-bucket': 'coding' }, { model: 'homelab/chat' });
    assert.equal(bucket.status, 403);
    assert.equal(upstreamHits(lab), 0);
    // The route the key may use, pinned by header, is fine.
    const own = await chat(lab, { ...bearer(key), 'x-homelab-route': 'win-5090' }, { model: 'homelab/chat' });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.headers.get('x-homelab-route'), 'win-5090');
    await settled(lab, id);
  });

  test('endpoints: a key limited to chat gets 403 on embeddings, and may still list models', async (t) => {
    const lab = await keysLab('keys', { edit: (doc) => (doc.routes['ubuntu-4090'].embeddings = true), sim: { 'ubuntu-4090': { embeddings: true } } });
    t.after(() => lab.close());
    const { key } = await createKey(lab, { name: 'chat-only', endpoints: ['/v1/chat/*'] });
    const e = await postJson(`${lab.url}/embeddings`, { model: 'homelab/auto', input: 'hello' }, bearer(key));
    assert.equal(e.status, 403);
    assert.equal(e.json.error.code, 'model_not_allowed');
    assert.equal((await chat(lab, bearer(key))).status, 200);
    assert.equal((await fetch(`${lab.url}/models`, { headers: bearer(key) })).status, 200);
    const other = await createKey(lab, { name: 'embedder' });
    assert.equal((await postJson(`${lab.url}/embeddings`, { model: 'homelab/auto', input: 'hello' }, bearer(other.key))).status, 200);
  });

  test('count_tokens: a key counts only with a model it may use (a count asks the route\'s own tokenizer)', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key } = await createKey(lab, { name: 'chat-model-only', models: ['homelab/chat'] });
    const count = (model: string, headers: Record<string, string> = {}) =>
      postJson(`${lab.url}/messages/count_tokens`, { model, messages: [{ role: 'user', content: 'count these words please' }] }, { ...bearer(key), ...headers });
    const refused = await count('homelab/auto');
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.type, 'error', 'the Anthropic envelope');
    assert.equal(refused.json.error.type, 'permission_error');
    assert.match(refused.json.error.message, /chat-model-only.*homelab\/auto/);
    assert.equal((await count('homelab/chat', { 'x-homelab-route': 'spark' })).status, 403, 'nor past its models by header');
    const allowed = await count('homelab/chat');
    assert.equal(allowed.status, 200, allowed.text);
    assert.ok(allowed.json.input_tokens > 0);
  });
});

describe('keys: rate limits (429 rate_limited + Retry-After)', () => {
  test('rpm: the request past the limit gets 429 with Retry-After in 1..60 s, and reaches no upstream', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key, id } = await createKey(lab, { name: 'cron', rpm: 3 });
    for (let i = 0; i < 3; i++) assert.equal((await chat(lab, bearer(key))).status, 200);
    const r = await chat(lab, bearer(key));
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, 'rate_limited');
    assert.equal(r.json.error.type, 'rate_limit_error');
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(upstreamHits(lab), 3);
    // Another key has its own window.
    const other = await createKey(lab, { name: 'ide', rpm: 3 });
    assert.equal((await chat(lab, bearer(other.key))).status, 200);
    await settled(lab, id);
  });

  test('max_in_flight: a second request while one runs is refused; the place comes back when the first ends, even by client abort', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key, id } = await createKey(lab, { name: 'agent', max_in_flight: 1 });
    const sim = lab.sims['ubuntu-4090']!;
    sim.pushFault({ kind: 'hang' });
    const ac = new AbortController();
    const first = fetch(`${lab.url}/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json', ...bearer(key) }, body: JSON.stringify({ model: 'homelab/fast', messages: [{ role: 'user', content: 'hold' }] }) }).catch((e: Error) => e);
    await sim.waitForRequests(1);
    const second = await chat(lab, bearer(key));
    assert.equal(second.status, 429);
    assert.equal(second.json.error.code, 'rate_limited');
    assert.equal(second.headers.get('retry-after'), '1');
    assert.equal(sim.received.length, 1);
    ac.abort();
    await first;
    await settled(lab, id);
    assert.equal((await chat(lab, bearer(key))).status, 200);
    assert.deepEqual(leftovers(lab), {});
  });
});

describe('keys: monthly token budgets (429 budget_exceeded)', () => {
  test('concurrent requests against a budget overshoot it by at most one request', async (t) => {
    const lab = await keysLab('keys', {
      routeOverrides: { 'ubuntu-4090': { slots: 32, queue: 32 } },
      sim: { 'ubuntu-4090': { slots: 32, latencyMs: 30, reply: () => 'y'.repeat(40) } },
    });
    t.after(() => lab.close());
    // Each request: ~10 prompt tokens (40 chars) + max_tokens 10 reserved; 10 + 10 used.
    const perRequest = 20;
    const limit = 110;
    const { key, id } = await createKey(lab, { name: 'budgeted', monthly_tokens: limit });
    const results = await Promise.all(Array.from({ length: 14 }, () => chat(lab, bearer(key), { max_tokens: 10 })));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    assert.ok(refused.length > 0, 'some requests must be refused');
    for (const r of refused) {
      assert.equal(r.status, 429, r.text);
      assert.equal(r.json.error.code, 'budget_exceeded');
      assert.equal(r.headers.get('x-should-retry'), 'false');
    }
    for (const r of ok) assert.equal(r.json.usage.prompt_tokens + r.json.usage.completion_tokens, perRequest);
    await settled(lab, id);
    const v = await keyView(lab, id);
    assert.equal(v.used_tokens_month, ok.length * perRequest);
    assert.ok(v.used_tokens_month <= limit + perRequest, `used ${v.used_tokens_month} of ${limit}: overshoot past one request`);
    assert.ok(v.used_tokens_month >= limit - perRequest, `used ${v.used_tokens_month}: the budget was not used`);
    assert.equal(v.requests_month, ok.length);
    // Spent: the next request is refused before any routing work.
    const before = upstreamHits(lab);
    assert.equal((await chat(lab, bearer(key), { max_tokens: 10 })).json.error.code, 'budget_exceeded');
    assert.equal(upstreamHits(lab), before);
  });

  test('settlement on every path: success, upstream error, client abort and mid-stream death leak no reservation', async (t) => {
    const lab = await keysLab('keys', { sim: { 'ubuntu-4090': { reply: () => 'z'.repeat(40), chunks: 4 } } });
    t.after(() => lab.close());
    const { key, id } = await createKey(lab, { name: 'paths', monthly_tokens: 1_000_000 });
    const sim = lab.sims['ubuntu-4090']!;
    const used = async () => (await keyView(lab, id)).used_tokens_month as number;

    // Success: the upstream's usage (10 prompt + 10 completion) is charged exactly.
    assert.equal((await chat(lab, bearer(key), { max_tokens: 50 })).status, 200);
    await settled(lab, id);
    assert.equal(await used(), 20);

    // A streamed success with usage asked for: the usage event is charged.
    const s = await chat(lab, bearer(key), { max_tokens: 50, stream: true, stream_options: { include_usage: true } });
    assert.equal(s.status, 200);
    await settled(lab, id);
    assert.equal(await used(), 40);

    // Mid-stream death: no usage came back, so what was reserved (prompt + max_tokens) is charged.
    sim.pushFault({ kind: 'die_after', chunks: 2 });
    const d = await chat(lab, bearer(key), { max_tokens: 50, stream: true });
    assert.equal(d.status, 200);
    assert.match(d.text, /event: error/);
    await settled(lab, id);
    assert.equal(await used(), 40 + 10 + 50);


    // Client abort mid-stream: charged the same way, the in-flight place and reservation freed.
    sim.pushFault({ kind: 'stall_after', chunks: 2 });
    const ac = new AbortController();
    const res = await fetch(`${lab.url}/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json', ...bearer(key) }, body: JSON.stringify({ model: 'homelab/fast', messages: [{ role: 'user', content: 'z'.repeat(40) }], max_tokens: 50, stream: true }) });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.read().catch(() => undefined);
    await sim.waitForAborts(1);
    await settled(lab, id);
    assert.equal(await used(), 100 + 60);

    // An upstream error before any byte on a pinned route: nothing was served, nothing charged.
    sim.pushFault({ kind: 'status', status: 500 });
    const e = await chat(lab, bearer(key), { max_tokens: 50 });
    assert.ok(e.status >= 500, e.text);
    await settled(lab, id);
    assert.equal(await used(), 160);
    assert.deepEqual(leftovers(lab), {});
    assert.equal((await keyView(lab, id)).requests_month, 5);
  });

  test('a request without max_tokens reserves the largest answer the lab could give, so a small budget admits one at a time', async (t) => {
    const lab = await keysLab('keys', { sim: { 'ubuntu-4090': { reply: () => 'y'.repeat(40), latencyMs: 30 } } });
    t.after(() => lab.close());
    const { key, id } = await createKey(lab, { name: 'small', monthly_tokens: 1000 });
    const rs = await Promise.all([chat(lab, bearer(key)), chat(lab, bearer(key))]);
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 429]);
    await settled(lab, id);
    assert.equal((await keyView(lab, id)).used_tokens_month, 20);
    assert.equal((await chat(lab, bearer(key))).status, 200);
  });
});

describe('keys: managed at run time (admin API), kept across restarts', () => {
  test('create shows the key once; list shows prefix, limits and usage; keys.db holds only the hash', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const created = await admin(lab, 'POST', '/keys', { name: 'obsidian', models: ['homelab/chat'], rpm: 10, max_in_flight: 2, monthly_tokens: 5000 });
    assert.equal(created.status, 201);
    const { id, key, name } = created.json;
    assert.equal(name, 'obsidian');
    assert.match(id, /^key_/);
    assert.match(key, KEY_FORMAT);
    const list = await admin(lab, 'GET', '/keys');
    assert.equal(list.status, 200);
    assert.ok(!list.text.includes(key), 'the list must not contain the secret');
    const v = list.json.keys.find((k: any) => k.id === id);
    for (const field of ['id', 'name', 'prefix', 'models', 'endpoints', 'rpm', 'max_in_flight', 'monthly_tokens', 'used_tokens_month', 'requests_month', 'created_at', 'last_used_at', 'expires_at', 'revoked']) assert.ok(field in v, field);
    assert.ok(key.startsWith(v.prefix) && v.prefix.length < 16);
    assert.deepEqual([v.models, v.rpm, v.max_in_flight, v.monthly_tokens, v.used_tokens_month, v.revoked], [['homelab/chat'], 10, 2, 5000, 0, false]);
    assert.equal(v.last_used_at, null);
    await chat(lab, bearer(key), { model: 'homelab/chat' });
    assert.ok((await keyView(lab, id)).last_used_at);
    lab.svc.keys.flush();
    const hash = createHash('sha256').update(key).digest('hex');
    const files = readdirSync(lab.dataDir).filter((f) => f.startsWith('keys.db'));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(lab.dataDir, f))));
    assert.ok(bytes.includes(hash), 'keys.db holds the SHA-256');
    assert.ok(!bytes.includes(key.slice(4)), 'keys.db must not hold the secret');
  });

  test('after the first use of a key no request reads keys.db', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key, id } = await createKey(lab, { name: 'hot', rpm: 100, monthly_tokens: 100_000 });
    assert.equal((await chat(lab, bearer(key), { max_tokens: 5 })).status, 200);
    const db = lab.svc.keys.db as any;
    const reads: string[] = [];
    for (const m of ['all', 'usage']) {
      const original = db[m].bind(db);
      db[m] = (...args: unknown[]) => {
        reads.push(m);
        return original(...args);
      };
    }
    for (let i = 0; i < 5; i++) assert.equal((await chat(lab, bearer(key), { max_tokens: 5 })).status, 200);
    await settled(lab, id);
    assert.deepEqual(reads, []);
  });

  test('bad input changes nothing: unknown field, bad limit, duplicate name, unknown id', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { id } = await createKey(lab, { name: 'dup' });
    for (const body of [{ name: 'x', colour: 'red' }, { name: 'x', rpm: 0 }, { name: 'x', rpm: 1.5 }, { name: 'bad name!' }, { rpm: 5 }, { name: 'x', models: [] }, { name: 'x', expires_at: 'soon' }]) {
      const r = await admin(lab, 'POST', '/keys', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.code, 'invalid_request');
    }
    assert.equal((await admin(lab, 'POST', '/keys', { name: 'dup' })).status, 409);
    assert.equal((await admin(lab, 'PATCH', `/keys/${id}`, { rpm: -1 })).status, 400);
    assert.equal((await admin(lab, 'PATCH', '/keys/key_nope', { rpm: 1 })).status, 404);
    assert.equal((await admin(lab, 'POST', '/keys/key_nope/rotate')).status, 404);
    assert.equal((await admin(lab, 'DELETE', '/keys/key_nope')).status, 404);
    const all = (await admin(lab, 'GET', '/keys')).json.keys;
    assert.equal(all.length, 1);
    assert.equal(all[0].rpm, null);
    // Without the admin token: 401, like every /admin call.
    assert.equal((await admin(lab, 'GET', '/keys', undefined, {})).status, 401);
  });

  test('PATCH changes limits at once; rotate and revoke take effect without a restart', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { id, key } = await createKey(lab, { name: 'ha' });
    assert.equal((await chat(lab, bearer(key))).status, 200);
    const p = await admin(lab, 'PATCH', `/keys/${id}`, { models: ['homelab/chat'] });
    assert.equal(p.status, 200);
    assert.deepEqual(p.json.models, ['homelab/chat']);
    assert.equal((await chat(lab, bearer(key))).status, 403);
    assert.equal((await admin(lab, 'PATCH', `/keys/${id}`, { models: null })).status, 200);
    assert.equal((await chat(lab, bearer(key))).status, 200);

    const rot = await admin(lab, 'POST', `/keys/${id}/rotate`);
    assert.equal(rot.status, 200);
    assert.equal(rot.json.id, id);
    assert.match(rot.json.key, KEY_FORMAT);
    assert.equal((await chat(lab, bearer(key))).status, 401);
    assert.equal((await chat(lab, bearer(rot.json.key))).status, 200);
    // Same id, same usage: the month's count follows the key, not the secret.
    assert.equal((await keyView(lab, id)).requests_month, 3);

    const del = await admin(lab, 'DELETE', `/keys/${id}`);
    assert.equal(del.status, 200);
    assert.equal(del.json.revoked, true);
    const r = await chat(lab, bearer(rot.json.key));
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /revoked/);
    // Kept for the log; the name may be used again.
    assert.equal((await keyView(lab, id)).revoked, true);
    assert.equal((await admin(lab, 'POST', '/keys', { name: 'ha' })).status, 201);
    assert.equal((await admin(lab, 'POST', `/keys/${id}/rotate`)).status, 409);
  });

  test('keys and their month usage survive a restart (same data dir, new process state)', async () => {
    const first = await keysLab('keys');
    const { id, key } = await createKey(first, { name: 'survivor', monthly_tokens: 100_000, rpm: 100 });
    const revoked = await createKey(first, { name: 'gone' });
    await admin(first, 'DELETE', `/keys/${revoked.id}`);
    assert.equal((await chat(first, bearer(key), { max_tokens: 20 })).status, 200);
    await settled(first, id);
    const usedBefore = (await keyView(first, id)).used_tokens_month;
    assert.ok(usedBefore > 0);
    await first.close();

    const second = await keysLab('keys', { dataDir: first.dataDir });
    try {
      assert.equal((await chat(second, bearer(key), { max_tokens: 20 })).status, 200);
      assert.equal((await chat(second, bearer(revoked.key))).status, 401);
      await settled(second, id);
      const v = await keyView(second, id);
      assert.equal(v.used_tokens_month, usedBefore * 2);
      assert.equal(v.requests_month, 2);
      assert.equal(v.rpm, 100);
    } finally {
      await second.close();
    }
  });

  test('a key marked admin is accepted as the /admin bearer token; an ordinary key is not', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const boss = await createKey(lab, { name: 'ui', admin: true });
    const plain = await createKey(lab, { name: 'app' });
    assert.equal((await admin(lab, 'GET', '/upstreams', undefined, bearer(boss.key))).status, 200);
    assert.equal((await admin(lab, 'GET', '/keys', undefined, bearer(boss.key))).status, 200);
    assert.equal((await admin(lab, 'GET', '/upstreams', undefined, bearer(plain.key))).status, 401);
    await admin(lab, 'DELETE', `/keys/${boss.id}`);
    assert.equal((await admin(lab, 'GET', '/upstreams', undefined, bearer(boss.key))).status, 401);
  });

  test('static keys in the policy (by hash) work, are listed read-only, and follow a reload', async (t) => {
    const secret = 'hlr_' + 'S'.repeat(43);
    const hash = createHash('sha256').update(secret).digest('hex');
    const lab = await keysLab('keys', { policyFile: true, edit: (doc) => (doc.auth.keys = [{ name: 'gitops', key_sha256: `sha256:${hash}`, models: ['homelab/*'] }]) });
    t.after(() => lab.close());
    assert.equal((await chat(lab, bearer(secret))).status, 200);
    const v = (await admin(lab, 'GET', '/keys')).json.keys.find((k: any) => k.name === 'gitops');
    assert.equal(v.source, 'policy');
    assert.equal(v.requests_month, 1);
    assert.equal((await admin(lab, 'PATCH', `/keys/${encodeURIComponent(v.id)}`, { rpm: 1 })).status, 409);
    assert.equal((await admin(lab, 'DELETE', `/keys/${encodeURIComponent(v.id)}`)).status, 409);
    // Removing it from the policy file and reloading takes it away.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(lab.policyPath!, lab.policyYaml.replace(/\n {2}keys:\n(?: {4}.*\n)+/, '\n  keys: []\n'));
    assert.equal((await admin(lab, 'POST', '/reload-config')).status, 200);
    assert.equal((await chat(lab, bearer(secret))).status, 401);
  });
});

describe('keys: attribution', () => {
  test('metrics carry the key name as client; the decision log names the client', async (t) => {
    const lab = await keysLab('keys');
    t.after(() => lab.close());
    const { key } = await createKey(lab, { name: 'frigate', models: ['homelab/fast'] });
    await chat(lab, bearer(key));
    await chat(lab, bearer(key), { model: 'homelab/chat' });
    await chat(lab, { 'x-api-key': 'hlr_' + 'C'.repeat(43) });
    const text = await (await fetch(`${lab.base}/metrics`)).text();
    const samples = parseExposition(text).filter((s) => s.name === 'homelab_router_client_requests_total');
    const by = Object.fromEntries(samples.map((s) => [`${s.labels.client}:${s.labels.code}`, s.value]));
    assert.deepEqual(by, { 'frigate:200': 1, 'frigate:403': 1, 'none:401': 1 });
    const tokens = parseExposition(text).filter((s) => s.name === 'homelab_router_client_tokens_total' && s.labels.client === 'frigate');
    assert.ok(tokens.some((s) => s.labels.type === 'completion' && s.value > 0));
    await pollUntil('the decision line naming the client', () => (readJsonLines(join(lab.logDir, 'router-decisions.jsonl')).some((l) => l.client === 'frigate' && l.status === 200) ? true : undefined));
  });
});
