// How two copies of one API key merge between replicas (cluster/key-records.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredKey } from '../../router/keys/db.ts';
import { mergeKey, mirrorOf, parseKeyRecord, sameKey } from '../../router/cluster/key-records.ts';

const base: StoredKey = {
  id: 'key_1', name: 'frigate', hash: 'h0', prefix: 'hlr_aaaa', models: ['*'], endpoints: ['*'], rpm: 10, max_in_flight: null, monthly_tokens: null,
  expires_at: null, admin: false, created_at: '2026-01-01T00:00:00.000Z', rotated_at: null, revoked_at: null, last_used_at: null,
};

test('limits come from the winning copy; the other copy\'s limits are dropped', () => {
  const mine = { ...base, rpm: 99 };
  assert.equal(mergeKey(mine, base).rpm, 99);
  assert.equal(mergeKey(base, mine).rpm, 10);
});

test('a revocation sticks whichever copy wins, at its earliest time', () => {
  const revoked = { ...base, revoked_at: '2026-02-01T00:00:00.000Z' };
  assert.equal(mergeKey(base, revoked).revoked_at, revoked.revoked_at);
  assert.equal(mergeKey(revoked, base).revoked_at, revoked.revoked_at);
  assert.equal(mergeKey(revoked, { ...base, revoked_at: '2026-03-01T00:00:00.000Z' }).revoked_at, revoked.revoked_at);
});

test('the latest rotation wins the secret', () => {
  const rotated = { ...base, hash: 'h1', prefix: 'hlr_bbbb', rotated_at: '2026-02-01T00:00:00.000Z' };
  const later = { ...base, hash: 'h2', prefix: 'hlr_cccc', rotated_at: '2026-03-01T00:00:00.000Z' };
  assert.equal(mergeKey(base, rotated).hash, 'h1');
  assert.equal(mergeKey(rotated, base).hash, 'h1');
  assert.equal(mergeKey(rotated, later).hash, 'h2');
  assert.equal(mergeKey(later, rotated).prefix, 'hlr_cccc');
});

test('the last use is local: never shared, never a difference', () => {
  const used = { ...base, last_used_at: '2026-02-01T00:00:00.000Z' };
  assert.equal(mirrorOf(used).last_used_at, null);
  assert.ok(sameKey(used, base));
  assert.equal(mergeKey(base, used).last_used_at, used.last_used_at);
});

test('a record that is not a key is refused', () => {
  assert.equal(parseKeyRecord('{"id":"x"}'), null);
  assert.equal(parseKeyRecord('not json'), null);
  assert.deepEqual(parseKeyRecord(JSON.stringify(base)), base);
});
