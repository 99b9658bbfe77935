// The pure parts of per-application keys: key format, how requests present a key, globs, the
// rpm window, reserve-then-settle arithmetic, month boundaries, the start-up warning, and
// keys.db's schema migration on a real file.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { exposureWarnings } from '../../router/cli/serve.ts';
import { KeyDb, KEYS_SCHEMA_VERSION } from '../../router/keys/db.ts';
import { globMatcher } from '../../router/keys/entry.ts';
import { LocalKeyLimits, MonthClock } from '../../router/keys/limits.ts';
import { displayPrefix, keyHash, newKeySecret, normaliseHash, presentedKey } from '../../router/keys/secret.ts';

test('keys – a new key is hlr_ + 43 base62 characters (≥ 256 bits), each one different', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const k = newKeySecret();
    assert.match(k, /^hlr_[0-9A-Za-z]{43}$/);
    seen.add(k);
  }
  assert.equal(seen.size, 200);
  const k = newKeySecret();
  assert.equal(keyHash(k).length, 64);
  assert.equal(displayPrefix(k), k.slice(0, 10));
  assert.equal(normaliseHash('sha256:' + 'AB'.repeat(32)), 'ab'.repeat(32));
  assert.equal(normaliseHash('xyz'), null);
});

test('keys – presented as Bearer, x-api-key or the Basic password; nothing else counts', () => {
  const basic = (s: string) => 'Basic ' + Buffer.from(s).toString('base64');
  assert.equal(presentedKey({ authorization: 'Bearer hlr_a' }), 'hlr_a');
  assert.equal(presentedKey({ authorization: 'bearer   hlr_a  ' }), 'hlr_a');
  assert.equal(presentedKey({ 'x-api-key': 'hlr_b' }), 'hlr_b');
  assert.equal(presentedKey({ authorization: basic('user:hlr_c') }), 'hlr_c');
  assert.equal(presentedKey({ authorization: basic(':hlr_d:with:colons') }), 'hlr_d:with:colons');
  assert.equal(presentedKey({ authorization: basic('user-only') }), undefined);
  assert.equal(presentedKey({ authorization: 'Bearer ' }), undefined);
  assert.equal(presentedKey({ authorization: 'Token hlr_e' }), undefined);
  assert.equal(presentedKey({}), undefined);
  // Authorization wins over x-api-key when both are sent.
  assert.equal(presentedKey({ authorization: 'Bearer hlr_f', 'x-api-key': 'hlr_g' }), 'hlr_f');
});

test('keys – globs: * spans anything including /, ? one character, the rest literal', () => {
  const m = globMatcher(['homelab/*', 'qwen?.5-*', 'gemma-4-31b']);
  for (const yes of ['homelab/auto', 'homelab/a/b', 'qwen2.5-vl', 'gemma-4-31b']) assert.ok(m(yes), yes);
  for (const no of ['Homelab/auto', 'qwen2x5-vl', 'gemma-4-31b-it', 'xhomelab/auto']) assert.ok(!m(no), no);
  assert.ok(globMatcher(['*'])('anything'));
  assert.ok(!globMatcher([])('anything'));
  assert.ok(globMatcher(['a.b'])('a.b') && !globMatcher(['a.b'])('axb'));
});

function store() {
  const persisted = new Map<string, { tokens: number; requests: number }>();
  const limits = new LocalKeyLimits({
    loadUsage: (id, month) => persisted.get(`${id}|${month}`) ?? { tokens: 0, requests: 0 },
    onSettled: (id, month, tokens, requests) => {
      const p = persisted.get(`${id}|${month}`) ?? { tokens: 0, requests: 0 };
      persisted.set(`${id}|${month}`, { tokens: p.tokens + tokens, requests: p.requests + requests });
    },
  });
  return { limits, persisted };
}

test('keys – rpm counts the last minute of admitted requests; a refusal and a taken-back request count nothing', () => {
  const { limits } = store();
  const l = { rpm: 2, maxInFlight: null };
  const t0 = 1_000_000;
  assert.deepEqual(limits.admit('k', l, t0), { ok: true });
  assert.deepEqual(limits.admit('k', l, t0 + 10_000), { ok: true });
  const refused = limits.admit('k', l, t0 + 20_000);
  assert.deepEqual(refused, { ok: false, why: 'rpm', retryAfterS: 40 });
  limits.unadmit('k');
  assert.deepEqual(limits.admit('k', l, t0 + 20_000), { ok: true });
  assert.equal(limits.admit('k', l, t0 + 59_999).ok, false);
  assert.deepEqual(limits.admit('k', l, t0 + 60_000), { ok: true });
  assert.equal(limits.admit('k', l, t0 + 60_001).ok, false);
});

test('keys – max_in_flight is a count of places taken and given back', () => {
  const { limits } = store();
  const l = { rpm: null, maxInFlight: 2 };
  assert.ok(limits.admit('k', l, 0).ok);
  assert.ok(limits.admit('k', l, 0).ok);
  assert.deepEqual(limits.admit('k', l, 0), { ok: false, why: 'in_flight', retryAfterS: 1 });
  limits.release('k');
  assert.ok(limits.admit('k', l, 0).ok);
  limits.release('k');
  limits.release('k');
  limits.release('k');
  assert.equal(limits.held('k').inFlight, 0);
});

test('keys – reserve then settle: the prompt must fit, the reservation is clamped to what is left, settle charges the actual', () => {
  const { limits, persisted } = store();
  assert.deepEqual(limits.reserve('k', '2026-12', 10, 30, 100), { ok: true, reserved: 30 });
  assert.deepEqual(limits.reserve('k', '2026-12', 10, 30, 100), { ok: true, reserved: 30 });
  assert.deepEqual(limits.reserve('k', '2026-12', 10, 30, 100), { ok: true, reserved: 30 });
  // 10 left: the prompt fits, the reservation is clamped.
  assert.deepEqual(limits.reserve('k', '2026-12', 10, 30, 100), { ok: true, reserved: 10 });
  assert.deepEqual(limits.reserve('k', '2026-12', 1, 30, 100), { ok: false, used: 0, limit: 100 });
  limits.settle('k', '2026-12', 30, 25);
  limits.settle('k', '2026-12', 30, 30);
  limits.settle('k', '2026-12', 30, 0);
  limits.settle('k', '2026-12', 10, 30);
  assert.deepEqual(limits.usage('k', '2026-12'), { tokens: 85, requests: 4 });
  assert.equal(limits.held('k').reserved, 0);
  assert.deepEqual(persisted.get('k|2026-12'), { tokens: 85, requests: 4 });
  // 15 left: a prompt of 20 does not fit; one of 15 does.
  assert.equal(limits.reserve('k', '2026-12', 20, 20, 100).ok, false);
  assert.deepEqual(limits.reserve('k', '2026-12', 15, 40, 100), { ok: true, reserved: 15 });
  // A new month starts from what was persisted for it (nothing).
  assert.deepEqual(limits.reserve('k', '2027-01', 10, 30, 100), { ok: true, reserved: 30 });
  // No limit: nothing reserved, usage still counted.
  assert.deepEqual(limits.reserve('u', '2026-12', 10, 30, null), { ok: true, reserved: 0 });
});

test('keys – the month is the calendar month in UTC and changes exactly at its boundary', () => {
  const c = new MonthClock();
  assert.equal(c.monthOf(Date.UTC(2026, 11, 31, 23, 59, 59, 999)), '2026-12');
  assert.equal(c.monthOf(Date.UTC(2027, 0, 1)), '2027-01');
  assert.equal(c.monthOf(Date.UTC(2026, 1, 28, 12)), '2026-02');
  assert.equal(c.monthOf(Date.UTC(2026, 2, 1)), '2026-03');
});

test('keys – an open router off loopback warns twice (exposure and no keys); keys mode once; loopback never', () => {
  assert.deepEqual(exposureWarnings('127.0.0.1', 'open'), []);
  assert.deepEqual(exposureWarnings('::1', 'open'), []);
  const open = exposureWarnings('0.0.0.0', 'open');
  assert.equal(open.length, 2);
  assert.match(open[1]!, /auth\.mode is open/);
  assert.equal(exposureWarnings('192.0.2.10', 'keys').length, 1);
});

test('keys – keys.db is created at the current schema version, reopened without change, and refused when newer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-keysdb-'));
  const db = new KeyDb(dir);
  db.write([{ keyId: 'k', month: '2026-12', tokens: 5, requests: 1 }], []);
  db.write([{ keyId: 'k', month: '2026-12', tokens: 7, requests: 1 }], []);
  db.close();
  const again = new KeyDb(dir);
  assert.deepEqual(again.usage('k', '2026-12'), { tokens: 12, requests: 2 });
  again.close();
  const raw = new Database(join(dir, 'keys.db'));
  assert.equal(raw.pragma('user_version', { simple: true }), KEYS_SCHEMA_VERSION);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  raw.pragma(`user_version = ${KEYS_SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(() => new KeyDb(dir), /newer than this homelab-router knows/);
});

test('keys – refusals use the endpoint protocol: OpenAI envelope by default, Anthropic on /v1/messages', async () => {
  const { createServer } = await import('node:http');
  const { sendError } = await import('../../router/http/respond.ts');
  const { RouterError } = await import('../../router/errors.ts');
  const server = createServer((_req, res) => sendError(res, new RouterError('rate_limited', 'slow down', { retryAfterS: 7 })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const openai = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`);
    assert.equal(openai.status, 429);
    assert.equal(openai.headers.get('retry-after'), '7');
    assert.deepEqual(await openai.json(), { error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limited', param: null } });
    const anthropic = await fetch(`http://127.0.0.1:${port}/v1/messages`);
    assert.equal(anthropic.status, 429);
    assert.equal(anthropic.headers.get('retry-after'), '7');
    assert.deepEqual(await anthropic.json(), { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } });
  } finally {
    server.close();
  }
});

test('keys – static keys in the policy: names and hashes unique, dates that parse; bad ones name the key', async () => {
  const { labDoc, compile } = await import('../helpers/policies.ts');
  const { PolicyError } = await import('../../router/policy/load.ts');
  const hash = 'ab'.repeat(32);
  const doc = labDoc();
  doc.auth = { mode: 'keys', keys: [{ name: 'grafana', key_sha256: `sha256:${hash}`, rpm: 60 }] };
  const ok = compile(doc);
  assert.equal(ok.doc.auth.keys[0]!.admin, false);
  assert.equal(compile(labDoc()).doc.auth.mode, 'open');
  const bad = labDoc();
  bad.auth = { keys: [{ name: 'a', key_sha256: hash }, { name: 'a', key_sha256: hash.toUpperCase(), expires_at: 'someday' }] };
  assert.throws(() => compile(bad), (err: unknown) => {
    const errors = (err as InstanceType<typeof PolicyError>).errors.join('\n');
    return /auth\.keys\[1\]\.name: "a" is used by another key/.test(errors) && /auth\.keys\[1\]\.key_sha256: the same hash/.test(errors) && /auth\.keys\[1\]\.expires_at/.test(errors);
  });
  const badHash = labDoc();
  badHash.auth = { keys: [{ name: 'a', key_sha256: 'plaintext-key' }] };
  assert.throws(() => compile(badHash), /key_sha256/);
  const badMode = labDoc();
  badMode.auth = { mode: 'closed' };
  assert.throws(() => compile(badMode), /auth\.mode|auth/);
});
