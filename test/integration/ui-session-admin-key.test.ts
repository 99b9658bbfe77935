// A web UI session opened with an admin key (SPEC §12) lasts only while that key is a valid
// admin key: revoked, or patched to admin: false, the next call with the session's cookie is
// refused and the page is told it is signed out. A session opened with the admin token is not
// touched by it. Real router, real HTTP, real keys.db.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab } from '../helpers/lab.ts';

const TOKEN = 'session-admin-key-token';

test('a UI session opened with an admin key ends when the key is revoked or loses admin; the admin token’s session stays', async (t) => {
  const lab = await startLab({ adminToken: TOKEN, dataDir: mkdtempSync(join(tmpdir(), 'hr-ui-key-')) });
  t.after(() => lab.close());
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${lab.base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    assert.ok(res.status < 300, `${method} ${path}: ${res.status}`);
    return (await res.json()) as any;
  };
  const signIn = async (token: string) => {
    const res = await fetch(`${lab.base}/ui/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { subject: string };
    return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, subject: body.subject };
  };
  const withCookie = async (cookie: string) => {
    const listed = await fetch(`${lab.base}/admin/keys`, { headers: { cookie } });
    await listed.text();
    const session = (await (await fetch(`${lab.base}/ui/api/session`, { headers: { cookie } })).json()) as { signed_in: boolean };
    return { status: listed.status, signedIn: session.signed_in };
  };

  const revoked = await admin('POST', '/admin/keys', { name: 'ops-laptop', admin: true });
  const demoted = await admin('POST', '/admin/keys', { name: 'ops-phone', admin: true });
  const byRevoked = await signIn(revoked.key);
  const byDemoted = await signIn(demoted.key);
  const byToken = await signIn(TOKEN);
  assert.equal(byRevoked.subject, 'admin key');
  assert.equal(byToken.subject, 'admin');
  for (const s of [byRevoked, byDemoted, byToken]) assert.deepEqual(await withCookie(s.cookie), { status: 200, signedIn: true });

  await admin('DELETE', `/admin/keys/${revoked.id}`);
  assert.deepEqual(await withCookie(byRevoked.cookie), { status: 401, signedIn: false }, 'the revoked key’s session is over');
  assert.deepEqual(await withCookie(byDemoted.cookie), { status: 200, signedIn: true }, 'another key’s session is not');

  await admin('PATCH', `/admin/keys/${demoted.id}`, { admin: false });
  assert.deepEqual(await withCookie(byDemoted.cookie), { status: 401, signedIn: false }, 'a key that is no longer admin ends its session');

  assert.deepEqual(await withCookie(byToken.cookie), { status: 200, signedIn: true }, 'the admin token’s session stays');
  // Signing in again with the revoked key is refused.
  const again = await fetch(`${lab.base}/ui/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: revoked.key }) });
  assert.equal(again.status, 401);
  await again.text();
});
