// SPEC §5 step 6: the context guard clamps max_tokens on a route that holds the prompt but not
// the requested output, skips a route that cannot hold the prompt plus min_output_tokens, and
// `context_guard.mode: skip` restores skipping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestFacts, type ChatBody } from '../../router/classify/request-facts.ts';
import { clampedMaxTokens, tokensNeeded } from '../../router/decide/context-guard.ts';
import { decide } from '../../router/decide/engine.ts';
import { withTopLevel } from '../../router/proxy/upstream-body.ts';
import { loadPolicyFile } from '../../router/policy/load.ts';
import { compile as compileDoc } from '../helpers/policies.ts';
import { SHIPPED_POLICY } from '../helpers/lab.ts';
import { fileURLToPath } from 'node:url';

const allUp = () => ({ healthy: true, drained: false });
const shipped = loadPolicyFile(fileURLToPath(SHIPPED_POLICY));

function opencodeTurn(promptChars: number, maxTokens = 32000): ChatBody {
  return {
    model: 'homelab/auto',
    max_tokens: maxTokens,
    messages: [
      { role: 'system', content: 'You are a coding agent. ' + 'x'.repeat(promptChars) },
      { role: 'user', content: 'what does this error in the screenshot mean?' },
    ],
  } as ChatBody;
}

test('context guard arithmetic: need is prompt + min(asked, min_output); skip mode needs prompt + asked', () => {
  const clamp = { min_output_tokens: 1024, mode: 'clamp' as const };
  assert.equal(tokensNeeded(clamp, 2000, 32000), 3024);
  assert.equal(tokensNeeded(clamp, 2000, 100), 2100);
  assert.equal(tokensNeeded(clamp, 2000, 0), 3024);
  assert.equal(tokensNeeded({ ...clamp, mode: 'skip' }, 2000, 32000), 34000);
  assert.equal(clampedMaxTokens(clamp, 32768, 2000, 32000), 30768);
  assert.equal(clampedMaxTokens(clamp, 32768, 2000, 4000), undefined);
  assert.equal(clampedMaxTokens(clamp, 32768, 2000, 0), undefined);
  assert.equal(clampedMaxTokens({ ...clamp, mode: 'skip' }, 32768, 2000, 32000), undefined);
});

test('shipped policy: an OpenCode screenshot asking max_tokens 32000 stays on the 32K vision route, clamped', () => {
  const b = opencodeTurn(8000);
  (b.messages[1]!.content as unknown) = [{ type: 'text', text: 'what does this error mean?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }];
  const d = decide({ facts: requestFacts(b, 'last_user', 2) }, shipped, allUp);
  assert.equal(d.route, 'ubuntu-4090');
  assert.deepEqual(d.skipped, []);
  assert.equal(d.requestedMaxTokens, 32000);
  assert.equal(d.maxTokensSent, 32768 - d.estimatedTokens);
});

test('shipped policy: context_guard.mode skip sends the same request down the outage chain', () => {
  const doc = structuredClone(shipped.doc) as any;
  doc.context_guard = { mode: 'skip', min_output_tokens: 1024 };
  const b = opencodeTurn(8000);
  (b.messages[1]!.content as unknown) = [{ type: 'text', text: 'what does this error mean?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }];
  const compiled = compileDoc(doc);
  const d = decide({ facts: requestFacts(b, 'last_user', 2) }, compiled, allUp);
  assert.equal(d.route, 'spark');
  assert.deepEqual(d.skipped, [{ route: 'ubuntu-4090', why: 'too_small' }]);
  assert.equal(d.maxTokensSent, undefined);
});

test('a route that cannot hold prompt + min_output_tokens is skipped; a pin that fits nowhere is context_length_exceeded', () => {
  // ~32,000 prompt tokens: 32K routes cannot hold it plus 1024.
  const big = { model: 'homelab/chat', messages: [{ role: 'user', content: 'x'.repeat(4 * 32000) }] } as ChatBody;
  const pinned = decide({ facts: requestFacts(big, 'last_user', 2) }, shipped, allUp);
  assert.equal(pinned.route, null);
  assert.equal(pinned.error?.code, 'context_length_exceeded');
  const auto = decide({ facts: requestFacts({ ...big, model: 'homelab/auto' }, 'last_user', 2), headerBucket: 'general_chat' }, shipped, allUp);
  assert.notEqual(auto.route, 'win-5090');
  assert.equal(auto.error, undefined);
});

test('withTopLevel lowers max_tokens and max_completion_tokens in place and leaves nested ones alone', () => {
  const json = '{"model":"homelab/auto","max_tokens": 32000,"tools":[{"max_tokens":5}],"max_completion_tokens":32000.0,"messages":[]}';
  const out = withTopLevel(json, { model: 'm', max_tokens: 900, max_completion_tokens: 900 });
  assert.equal(out, '{"model":"m","max_tokens": 900,"tools":[{"max_tokens":5}],"max_completion_tokens":900,"messages":[]}');
  // A key the client did not send is not added; a non-number value is not edited.
  assert.equal(withTopLevel('{"model":"a","messages":[]}', { model: 'm', max_tokens: 9 }), '{"model":"m","messages":[]}');
  assert.equal(withTopLevel('{"model":"a","max_tokens":"9"}', { model: 'm', max_tokens: 9 }), undefined);
});
