// The real-client tests (test/clients/agents.test.ts) may skip locally, never under CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentGate, isCi } from '../clients/gate.ts';

const noProblem = () => null;

test('agents gate: a missing install skips locally and fails under CI; a missing network namespace skips', () => {
  assert.deepEqual(agentGate('claude', false, undefined, noProblem), { run: false, skip: 'claude is not installed: run npm ci --prefix test/clients' });
  assert.deepEqual(agentGate('claude', false, 'false', noProblem), { run: false, skip: 'claude is not installed: run npm ci --prefix test/clients' });
  const ci = agentGate('codex', false, 'true', noProblem);
  assert.equal(ci.run, false);
  assert.ok('fail' in ci && /codex is not installed/.test(ci.fail), JSON.stringify(ci));
  assert.deepEqual(agentGate('codex', true, 'true', noProblem), { run: true });
  assert.deepEqual(agentGate('codex', true, 'true', () => 'unshare -n failed'), { run: false, skip: 'unshare -n failed' });
  assert.deepEqual([isCi('true'), isCi('1'), isCi('yes'), isCi(''), isCi('0'), isCi('FALSE'), isCi(undefined)], [true, true, true, false, false, false, false]);
});
