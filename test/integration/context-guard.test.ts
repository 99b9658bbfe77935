// SPEC §5 step 6 over real HTTP: an OpenCode-style request asking max_tokens 32000 reaches a
// 32K route with the value lowered, the answer says what was sent, and explain and the
// decision log show it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startLab, leftovers, postJson, readJsonLines, type Lab } from '../helpers/lab.ts';
import { until } from '../helpers/faults.ts';

let lab: Lab;
before(async () => {
  lab = await startLab();
});
after(() => lab.close());

const IMG = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };

function screenshotTurn(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    model: 'homelab/auto',
    messages: [
      { role: 'system', content: 'You are opencode, an interactive CLI coding agent. ' + 'Follow the rules. '.repeat(400) },
      { role: 'user', content: [{ type: 'text', text: 'this error pops up when I run it, what does it mean?' }, IMG] },
    ],
    ...extra,
  };
}

test('clamp: the 32K vision route gets max_tokens lowered to what it holds, and x-homelab-max-tokens says so', async () => {
  const sim = lab.sims['ubuntu-4090']!;
  sim.resetStats();
  const r = await postJson(`${lab.url}/chat/completions`, screenshotTurn({ max_tokens: 32000 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-homelab-route'), 'ubuntu-4090');
  const sent = Number(r.headers.get('x-homelab-max-tokens'));
  assert.ok(sent > 0 && sent < 32000, `x-homelab-max-tokens: ${r.headers.get('x-homelab-max-tokens')}`);
  assert.equal(sim.received.length, 1);
  assert.equal(sim.received[0]!.body.max_tokens, sent);
  assert.equal(sim.received[0]!.body.model, 'qwen2.5-vl-7b-router-awq');
  assert.deepEqual(sim.received[0]!.body.messages, (screenshotTurn({}) as any).messages, 'nothing else in the body changed');

  const explain = await postJson(`${lab.url}/route/explain`, screenshotTurn({ max_completion_tokens: 32000 }));
  assert.equal(explain.json.route, 'ubuntu-4090');
  assert.equal(explain.json.max_tokens_requested, 32000);
  assert.equal(explain.json.max_tokens_sent, sent);

  const file = join(lab.logDir, 'router-decisions.jsonl');
  await until('decision logged', () => readJsonLines(file).some((l) => l.max_tokens_sent === sent));
  assert.deepEqual(leftovers(lab), {});
});

test('clamp: a request whose max_tokens fits goes unchanged and carries no x-homelab-max-tokens', async () => {
  const sim = lab.sims['ubuntu-4090']!;
  sim.resetStats();
  const raw = JSON.stringify(screenshotTurn({ max_tokens: 500 }));
  const r = await postJson(`${lab.url}/chat/completions`, raw);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-homelab-max-tokens'), null);
  assert.equal(sim.received[0]!.body.max_tokens, 500);
});
