import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOGUE, RouterError, asRouterError } from '../../router/errors.ts';

test('errors – every catalogue code is documented in the README table with its status, and no other', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('## Performance'));
  const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  assert.deepEqual(Object.fromEntries(rows), Object.fromEntries(Object.entries(ERROR_CATALOGUE).map(([code, v]) => [code, v.status])));
});

test('errors – the envelope is OpenAI-shaped; unknown errors do not leak their message', () => {
  const e = new RouterError('upstream_saturated', 'busy', { retryAfterS: 3 });
  assert.deepEqual(e.toBody(), { error: { message: 'busy', type: 'server_error', code: 'upstream_saturated', param: null } });
  assert.equal(e.status, 503);
  assert.equal(e.retryAfterS, 3);
  const hidden = asRouterError(new Error('secret internals'));
  assert.equal(hidden.code, 'internal_error');
  assert.ok(!hidden.message.includes('secret'));
});
