// The web UI's playground with `auth.mode: keys`, over real HTTP against a real router and
// simulated upstreams: a signed-in operator's page may call /v1/* without a key (the session
// cookie, the UI's header and the router's own origin together), and is logged as "ui:admin";
// the cookie without the header, the header without the cookie, a foreign page, a same-site page
// the operator allowed in server.cors_origins, a signed-out cookie and a bad key beside a good
// cookie all stay out, and none of them reaches an upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../helpers/lab.ts';
import { parseSse } from '../helpers/sse.ts';
import { pollUntil } from '../helpers/poll.ts';

const TOKEN = 'playground-keys-admin-token';
const SAME_SITE_PAGE = 'http://grafana.lab.example';
const CHAT = JSON.stringify({ model: 'homelab/auto', stream: true, messages: [{ role: 'user', content: 'tell me a joke' }] });

function reached(lab: Lab): number {
  return Object.values(lab.sims).reduce((n, s) => n + s.received.length, 0);
}

async function signIn(lab: Lab): Promise<string> {
  const res = await fetch(`${lab.base}/ui/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
  assert.equal(res.status, 200);
  await res.text();
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  assert.match(cookie, /^hlr_session=/);
  return cookie;
}

test('playground under auth.mode: keys – the signed-in page streams an answer as ui:admin; the cookie without the UI proof reaches no upstream', async (t) => {
  const lab = await startLab({
    adminToken: TOKEN,
    dataDir: mkdtempSync(join(tmpdir(), 'hr-pg-keys-')),
    edit: (doc) => {
      doc.auth = { mode: 'keys' };
      doc.server.cors_origins = [SAME_SITE_PAGE];
    },
  });
  t.after(() => lab.close());
  const cookie = await signIn(lab);
  const own = lab.base; // the Origin a page of /ui/ sends
  const post = (path: string, headers: Record<string, string>, body = CHAT) => fetch(`${lab.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  // Keys are really required: no key, no entry.
  const anonymous = await post('/v1/chat/completions', {});
  assert.equal(anonymous.status, 401);
  await anonymous.text();

  // The page's own call: cookie + UI header + its own Origin.
  const ok = await post('/v1/chat/completions', { cookie, 'x-homelab-ui': '1', origin: own, 'x-request-id': 'playground-under-keys' });
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.ok(ok.headers.get('x-homelab-route'), 'a routed answer');
  const events = parseSse(await ok.text());
  assert.equal(events.at(-1)?.data, '[DONE]');
  const text = events.filter((e) => e.data !== '[DONE]').map((e) => e.data.choices?.[0]?.delta?.content ?? '').join('');
  assert.match(text, /tell me a joke/);
  assert.equal(reached(lab), 1);

  // Explain too (the playground's other call), and the request log names the operator.
  const explained = await post('/v1/route/explain', { cookie, 'x-homelab-ui': '1', origin: own });
  assert.equal(explained.status, 200);
  assert.ok(((await explained.json()) as any).route);
  const row = await pollUntil('the playground request in the request log', async () => {
    const res = await fetch(`${lab.base}/admin/api/requests/playground-under-keys`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return res.status === 200 ? ((await res.json()) as any) : (await res.text(), undefined);
  });
  assert.equal(row.client, 'ui:admin');

  const refusals: Array<[string, Record<string, string>, number, string]> = [
    ['the cookie alone (a forged cross-site form or fetch)', { cookie }, 401, 'invalid_api_key'],
    ['the cookie and an own Origin, without the UI header', { cookie, origin: own }, 401, 'invalid_api_key'],
    ['the UI header without a session', { 'x-homelab-ui': '1', origin: own }, 401, 'invalid_api_key'],
    ['a made-up session', { cookie: 'hlr_session=not-a-session', 'x-homelab-ui': '1', origin: own }, 401, 'invalid_api_key'],
    ['a page on another site', { cookie, 'x-homelab-ui': '1', origin: 'http://evil.example' }, 403, 'origin_not_allowed'],
    ['a same-site page listed in cors_origins (it gets CORS, not the operator’s session)', { cookie, 'x-homelab-ui': '1', origin: SAME_SITE_PAGE }, 401, 'invalid_api_key'],
    ['an opaque origin (sandboxed frame)', { cookie, 'x-homelab-ui': '1', origin: 'null' }, 403, 'origin_not_allowed'],
    ['a bad key beside a good session: the key is what is checked', { cookie, 'x-homelab-ui': '1', origin: own, authorization: 'Bearer hlr_not_a_real_key_000000000000000000000000' }, 401, 'invalid_api_key'],
  ];
  for (const [what, headers, status, code] of refusals) {
    const res = await post('/v1/chat/completions', headers);
    assert.equal(res.status, status, what);
    assert.equal(((await res.json()) as any).error.code, code, what);
  }
  assert.equal(reached(lab), 1, 'no refused request reached an upstream');

  // Signed out: the same cookie with the full proof is refused.
  const out = await fetch(`${lab.base}/ui/api/logout`, { method: 'POST', headers: { cookie, 'x-homelab-ui': '1' } });
  await out.text();
  const after = await post('/v1/chat/completions', { cookie, 'x-homelab-ui': '1', origin: own });
  assert.equal(after.status, 401);
  await after.text();
  assert.equal(reached(lab), 1);
});
