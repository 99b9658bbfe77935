// The request log (SPEC §10) against real SQLite files: every /v1/* request is a row (refused
// ones too), with attempts, decision, cost-equivalent and payloads; the admin API's filters,
// cursor, detail, analytics and live feed; restart; 2,000 requests at c=32 with none lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { chat, coding, labFor, logLines, pinned, postJson, type Lab } from '../helpers/faults.ts';
import { startLab, type LabOptions } from '../helpers/lab.ts';
import { sseEvents } from '../helpers/faults.ts';
import { SCHEMA_VERSION } from '../../router/reqlog/schema.ts';

const TOKEN = 'reqlog-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

function dataDir(): string {
  return mkdtempSync(join(tmpdir(), 'hr-data-'));
}

const PRICING = (doc: any) => {
  doc.pricing = { reference: { 'ubuntu-6000': 'anthropic/claude-sonnet-4-5', 'win-5090': 'openai/gpt-4o-mini' }, overrides: { 'openai/gpt-4o-mini': { input_per_mtok: 0.15, output_per_mtok: 0.6 } } };
};

async function reqlogLab(t: import('node:test').TestContext, opts: LabOptions = {}): Promise<Lab> {
  return labFor(t, { dataDir: dataDir(), adminToken: TOKEN, edit: PRICING, ...opts });
}

async function api(lab: Lab, path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${lab.base}/admin/api${path}`, { headers: auth });
  return { status: res.status, json: await res.json() };
}

function rows(lab: Lab): any[] {
  const db = new Database(lab.svc.requestLog!.path, { readonly: true });
  try {
    return db.prepare('SELECT * FROM requests ORDER BY id').all();
  } finally {
    db.close();
  }
}

test('request log – one row per /v1/* request, refused ones included, with every SPEC field', async (t) => {
  const lab = await reqlogLab(t);
  const ok = await chat(lab, coding(), { 'x-request-id': 'rl-ok-1', 'user-agent': 'opencode/1.2' });
  assert.equal(ok.status, 200);
  const stream = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'rl-stream-1' }, body: JSON.stringify({ ...coding(), stream: true, stream_options: { include_usage: true } }) });
  await stream.text();
  assert.equal((await postJson(`${lab.url}/chat/completions`, '{not json', { 'x-request-id': 'rl-bad-1' })).status, 400);
  assert.equal((await chat(lab, pinned('no-such-model'), { 'x-request-id': 'rl-404-1' })).status, 404);
  assert.equal((await postJson(`${lab.url}/route/explain`, coding(), { 'x-request-id': 'rl-explain-1' })).status, 200);
  assert.equal((await fetch(`${lab.url}/models`, { headers: { 'x-request-id': 'rl-models-1' } })).status, 200);
  assert.equal((await fetch(`${lab.url}/chat/completions`, { headers: { 'x-request-id': 'rl-405-1' } })).status, 405);
  await lab.svc.requestLog!.drained();

  const byId = Object.fromEntries(rows(lab).map((r) => [r.request_id, r]));
  assert.deepEqual(Object.keys(byId).sort(), ['rl-404-1', 'rl-405-1', 'rl-bad-1', 'rl-explain-1', 'rl-models-1', 'rl-ok-1', 'rl-stream-1']);
  const r = byId['rl-ok-1'];
  assert.equal(r.endpoint, 'chat');
  assert.equal(r.client, '127.0.0.1');
  assert.equal(r.user_agent, 'opencode/1.2');
  assert.equal(r.model, 'homelab/auto');
  assert.equal(r.bucket, 'coding');
  assert.equal(r.route, 'ubuntu-6000');
  assert.equal(r.served_model, 'glm-4.5-air-awq');
  assert.equal(r.status, 200);
  assert.equal(r.stream, 0);
  assert.ok(r.prompt_tokens > 0 && r.completion_tokens > 0);
  assert.ok(r.cost_equivalent_usd > 0, 'ubuntu-6000 is priced as claude-sonnet-4-5');
  assert.equal(r.price_ref, 'anthropic/claude-sonnet-4-5');
  assert.deepEqual(JSON.parse(r.attempts).map((a: any) => [a.route, a.outcome, a.status]), [['ubuntu-6000', 'ok', 200]]);
  assert.ok(JSON.parse(r.decision).matched.coding.length > 0);
  assert.equal(byId['rl-stream-1'].stream, 1);
  assert.ok(byId['rl-stream-1'].ttfb_ms !== null);
  assert.equal(byId['rl-bad-1'].status, 400);
  assert.equal(byId['rl-bad-1'].error_code, 'invalid_request');
  assert.equal(byId['rl-bad-1'].cost_equivalent_usd, null);
  assert.equal(byId['rl-404-1'].error_code, 'model_not_found');
  assert.equal(byId['rl-explain-1'].endpoint, 'explain');
  assert.equal(byId['rl-explain-1'].bucket, 'coding');
  assert.equal(byId['rl-models-1'].endpoint, 'models');
  assert.equal(byId['rl-405-1'].status, 405);

  // The decision log is as before: chat and embeddings only, same fields.
  const lines = await logLines(lab, 'decisions');
  assert.deepEqual(lines.map((l) => l.request_id).sort(), ['rl-404-1', 'rl-bad-1', 'rl-ok-1', 'rl-stream-1']);
  assert.deepEqual(Object.keys(lines.find((l) => l.request_id === 'rl-ok-1')).filter((k) => k !== 'level' && k !== 'time'), [
    'request_id', 'endpoint', 'bucket', 'route', 'reason', 'fallback_path', 'status', 'latency_ms', 'ttfb_ms', 'stream', 'pinned', 'has_image', 'estimated_tokens', 'size_tier', 'tokens', 'policy_hash',
  ]);
});

test('request log – attempts show the failover; an unmapped route is unpriced (null), never $0', async (t) => {
  const lab = await reqlogLab(t);
  lab.sims['ubuntu-6000']!.pushFault({ kind: 'status', status: 500, body: { error: { message: 'the engine quoted: PROMPT-TEXT-IN-ERROR' } } });
  const res = await chat(lab, coding(), { 'x-request-id': 'rl-failover' });
  assert.equal(res.status, 200);
  const spark = await chat(lab, pinned('homelab/reasoning', 'why is the sky blue'), { 'x-request-id': 'rl-unpriced' });
  assert.equal(spark.status, 200);
  await lab.svc.requestLog!.drained();
  const byId = Object.fromEntries(rows(lab).map((r) => [r.request_id, r]));
  const attempts = JSON.parse(byId['rl-failover'].attempts);
  assert.deepEqual(attempts.map((a: any) => [a.route, a.outcome]), [['ubuntu-6000', 'outage'], [res.headers.get('x-homelab-route'), 'ok']]);
  assert.ok(attempts.every((a: any) => typeof a.ms === 'number' && a.ms >= 0));
  // An upstream's error body can quote the prompt: without store_payloads (or logging.prompts)
  // the stored attempt keeps its status, not its text.
  assert.match(attempts[0].detail, /HTTP 500/);
  assert.doesNotMatch(byId['rl-failover'].attempts, /PROMPT-TEXT/);
  assert.equal(byId['rl-unpriced'].route, 'spark');
  assert.equal(byId['rl-unpriced'].cost_equivalent_usd, null);
  assert.equal(byId['rl-unpriced'].price_ref, null);
  const detail = await api(lab, '/requests/rl-unpriced');
  assert.equal(detail.json.cost_equivalent_usd, null);
});

test('request log API – filters, cursor paging, detail, 404, bad input, analytics', async (t) => {
  const lab = await reqlogLab(t);
  for (let i = 0; i < 7; i++) assert.equal((await chat(lab, coding(), { 'x-request-id': `rl-page-${i}` })).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await chat(lab, pinned('homelab/fast', 'classify this as json')) ).status, 200);
  assert.equal((await postJson(`${lab.url}/chat/completions`, '{', { 'x-request-id': 'rl-bad' })).status, 400);
  await lab.svc.requestLog!.drained();

  const all = await api(lab, '/requests');
  assert.equal(all.status, 200);
  assert.equal(all.json.requests.length, 11);
  assert.equal(all.json.next_cursor, null);
  assert.equal(all.json.requests[0].request_id, 'rl-bad', 'newest first');

  // Paging by 3 over the route filter: every row once, in order.
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 5; page++) {
    const got: { status: number; json: any } = await api(lab, `/requests?route=ubuntu-6000&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...got.json.requests.map((r: any) => r.request_id));
    cursor = got.json.next_cursor;
    if (!cursor) break;
  }
  assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0].map((i) => `rl-page-${i}`));

  assert.deepEqual((await api(lab, '/requests?status=4xx')).json.requests.map((r: any) => r.request_id), ['rl-bad']);
  assert.equal((await api(lab, '/requests?status=200')).json.requests.length, 10);
  assert.equal((await api(lab, '/requests?status=5xx')).json.requests.length, 0);
  assert.equal((await api(lab, '/requests?model=homelab/fast')).json.requests.length, 3);
  assert.equal((await api(lab, '/requests?bucket=coding')).json.requests.length, 7);
  assert.equal((await api(lab, '/requests?client=127.0.0.1')).json.requests.length, 11);
  assert.equal((await api(lab, '/requests?client=10.0.0.9')).json.requests.length, 0);
  assert.equal((await api(lab, '/requests?reason=invalid_request')).json.requests.length, 1);
  assert.deepEqual((await api(lab, '/requests?q=rl-page-3')).json.requests.map((r: any) => r.request_id), ['rl-page-3']);
  assert.equal((await api(lab, `/requests?from=${Date.now() + 60_000}`)).json.requests.length, 0);
  assert.equal((await api(lab, `/requests?to=${new Date(Date.now() + 60_000).toISOString()}`)).json.requests.length, 11);
  for (const bad of ['limit=501', 'limit=0', 'status=2xy', 'from=yesterday', 'cursor=garbage', 'q=a*b']) {
    const r = await api(lab, `/requests?${bad}`);
    assert.equal(r.status, 400, bad);
    assert.equal(r.json.error.code, 'invalid_request');
  }

  const detail = await api(lab, '/requests/rl-page-2');
  assert.equal(detail.status, 200);
  assert.equal(detail.json.request_id, 'rl-page-2');
  assert.ok(detail.json.decision.scores.coding > 0);
  assert.equal(detail.json.payload, null);
  const missing = await api(lab, '/requests/never-seen');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'not_found');

  const a = await api(lab, '/analytics?range=1h&by=route');
  assert.equal(a.status, 200);
  assert.equal(a.json.step_s, 60);
  const route6000 = a.json.series.find((s: any) => s.key === 'ubuntu-6000');
  assert.equal(route6000.totals.requests, 7);
  assert.equal(route6000.points.length, 60);
  assert.deepEqual(Object.keys(route6000.points[0]).slice(0, 8), ['t', 'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cost_equivalent_usd', 'unpriced_requests', 'p50_ms'].slice(0, 8));
  assert.ok(route6000.totals.cost_equivalent_usd > 0);
  assert.ok(route6000.totals.p50_ms !== null && route6000.totals.p95_ms >= route6000.totals.p50_ms);
  assert.equal(a.json.totals.requests, 11);
  assert.equal(a.json.totals.errors, 1);
  const byStatus = await api(lab, '/analytics?range=30d&by=status');
  assert.deepEqual(byStatus.json.series.map((s: any) => [s.key, s.totals.requests]), [['200', 10], ['400', 1]]);
  assert.equal(byStatus.json.step_s, 86_400);
  const spark = (await api(lab, '/analytics?range=7d&by=route')).json.series.find((s: any) => s.key === 'ubuntu-4090');
  assert.equal(spark.totals.cost_equivalent_usd, null, 'an unpriced route shows null, not 0');
  assert.equal((await api(lab, '/analytics?range=2d')).status, 400);
  assert.equal((await api(lab, '/analytics?by=user')).status, 400);

  const noToken = await fetch(`${lab.base}/admin/api/requests`);
  assert.equal(noToken.status, 401);
});

test('request log API – /admin/api/events sends one event: request per finished request', async (t) => {
  const lab = await reqlogLab(t);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(`${lab.base}/admin/api/events`, { headers: auth, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  // The subscription is registered once the comment line arrives.
  while (!text.includes('\n\n')) text += decoder.decode((await reader.read()).value);
  await chat(lab, coding(), { 'x-request-id': 'rl-live-1' });
  await postJson(`${lab.url}/chat/completions`, '{', { 'x-request-id': 'rl-live-2' });
  for (let i = 0; i < 50 && sseEvents(text).filter((e) => e.event === 'request').length < 2; i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
  }
  const events = sseEvents(text).filter((e) => e.event === 'request');
  assert.deepEqual(events.map((e) => JSON.parse(e.data).request_id), ['rl-live-1', 'rl-live-2']);
  assert.equal(JSON.parse(events[0]!.data).route, 'ubuntu-6000');
  assert.equal(JSON.parse(events[1]!.data).status, 400);
  ac.abort();
});

test('request log – payloads only with store_payloads; system prompt and tools stored once by hash', async (t) => {
  const lab = await reqlogLab(t, {
    edit: (doc: any) => {
      PRICING(doc);
      doc.request_log = { store_payloads: true, payload_max_bytes: 4096 };
    },
  });
  const system = { role: 'system', content: 'You are a careful coding agent. '.repeat(40) };
  const tools = [{ type: 'function', function: { name: 'read_file', parameters: { type: 'object', properties: { path: { type: 'string' } } } } }];
  for (const id of ['rl-p1', 'rl-p2']) {
    assert.equal((await chat(lab, { model: 'homelab/auto', messages: [system, { role: 'user', content: `refactor the code, turn ${id}` }], tools }, { 'x-request-id': id })).status, 200);
  }
  await chat(lab, { model: 'homelab/auto', messages: [{ role: 'user', content: 'x'.repeat(6000) }] }, { 'x-request-id': 'rl-big' });
  await lab.svc.requestLog!.drained();
  const d = await api(lab, '/requests/rl-p2');
  assert.equal(d.json.payload_stored, true);
  assert.deepEqual(d.json.payload.request.messages[0], system);
  assert.equal(d.json.payload.request.messages[1].content, 'refactor the code, turn rl-p2');
  assert.deepEqual(d.json.payload.request.tools, tools);
  assert.match(d.json.payload.response, /"choices"/);
  assert.equal(d.json.payload.truncated, false);
  const big = await api(lab, '/requests/rl-big');
  assert.equal(big.json.payload.truncated, true);
  assert.equal(big.json.payload.request.length, 4096);
  const db = new Database(lab.svc.requestLog!.path, { readonly: true });
  t.after(() => db.close());
  assert.equal((db.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n, 2, 'one system blob and one tools blob for both turns');
});

test('request log – no payloads by default', async (t) => {
  const lab = await reqlogLab(t);
  await chat(lab, coding(), { 'x-request-id': 'rl-nopayload' });
  await lab.svc.requestLog!.drained();
  const d = await api(lab, '/requests/rl-nopayload');
  assert.equal(d.json.payload_stored, false);
  assert.equal(d.json.payload, null);
});

test('request log – rows survive a restart; the schema is migrated once', async (t) => {
  const dir = dataDir();
  const first = await startLab({ dataDir: dir, adminToken: TOKEN });
  await chat(first, coding(), { 'x-request-id': 'rl-before' });
  await first.close();
  const second = await labFor(t, { dataDir: dir, adminToken: TOKEN });
  await chat(second, coding(), { 'x-request-id': 'rl-after' });
  await second.svc.requestLog!.drained();
  assert.deepEqual(rows(second).map((r) => r.request_id), ['rl-before', 'rl-after']);
  const db = new Database(join(dir, 'requests.db'), { readonly: true });
  t.after(() => db.close());
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('auto_vacuum', { simple: true }), 2, 'incremental');
});

test('request log – 2,000 requests at c=32: 2,000 rows, none dropped', async (t) => {
  const lab = await reqlogLab(t);
  const total = 2_000;
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < total) {
        const i = next++;
        const res = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `rl-load-${i}` }, body: JSON.stringify(pinned('homelab/fast', `classify ${i}`)) });
        await res.arrayBuffer();
        statuses.push(res.status);
      }
    }),
  );
  assert.equal(statuses.length, total);
  await lab.svc.requestLog!.drained();
  const db = new Database(lab.svc.requestLog!.path, { readonly: true });
  t.after(() => db.close());
  assert.equal((db.prepare("SELECT count(DISTINCT request_id) AS n FROM requests WHERE request_id LIKE 'rl-load-%'").get() as { n: number }).n, total);
  const rolled = db.prepare("SELECT sum(requests) AS n FROM rollup_hour WHERE dim = 'route'").get() as { n: number };
  assert.equal(rolled.n, total, 'rollups agree with the rows');
  const metrics = await (await fetch(`${lab.base}/metrics`)).text();
  assert.match(metrics, new RegExp(`homelab_router_request_log_written_total ${total}\\b`));
  assert.doesNotMatch(metrics, /homelab_router_request_log_dropped_total\{[^}]*\} [1-9]/);
});

test('request log – without a data directory there is no requests.db and the API says so', async (t) => {
  const lab = await labFor(t, { adminToken: TOKEN });
  await chat(lab, coding());
  assert.equal(lab.svc.requestLog, undefined);
  const r = await api(lab, '/requests');
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'request_log_unavailable');
});

test('request log – request_log.enabled: false writes no rows', async (t) => {
  const dir = dataDir();
  const lab = await labFor(t, { dataDir: dir, adminToken: TOKEN, edit: (doc: any) => (doc.request_log = { enabled: false }) });
  await chat(lab, coding());
  await lab.svc.requestLog!.drained();
  assert.equal(existsSync(join(dir, 'requests.db')), false);
  assert.deepEqual((await api(lab, '/requests')).json, { requests: [], next_cursor: null });
});
