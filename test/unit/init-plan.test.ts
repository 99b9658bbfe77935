// `homelab-router init`'s planner (router/init/plan.ts) and renderer: facts about upstreams in,
// a policy the loader accepts out, with every bucket on a route that can serve it, fallback
// chains that end at the most capable route, and a comment on every guessed value.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load as parseYaml } from 'js-yaml';
import { guessed, told, type UpstreamFacts } from '../../router/init/facts.ts';
import { paramsFromName, planPolicy, type Template } from '../../router/init/plan.ts';
import { renderPolicy } from '../../router/init/render.ts';
import { staticChain } from '../../router/decide/chain.ts';
import { loadPolicyFile, parsePolicyText } from '../../router/policy/load.ts';
import type { CompiledPolicy } from '../../router/policy/compile.ts';
import { requestFacts } from '../../router/classify/request-facts.ts';
import { readCases } from '../../scripts/eval-routing.ts';

const shippedPolicy = loadPolicyFile(new URL('../../routing_policy.yaml', import.meta.url).pathname);
const shipped = shippedPolicy.doc;
const TEMPLATE: Template = { classifier: shipped.classifier, buckets: shipped.buckets };

function up(name: string, model: string, extra: Partial<UpstreamFacts> = {}): UpstreamFacts {
  return { name, url: `http://${name}.lan:8000/v1`, runtime: 'vllm', runtimeLabel: 'vLLM', model, otherModels: [], ...extra };
}

function compiled(facts: UpstreamFacts[]): { policy: CompiledPolicy; text: string } {
  const plan = planPolicy(facts, TEMPLATE);
  assert.deepEqual(plan.errors, []);
  const text = renderPolicy(plan, 'p.yaml');
  return { policy: parsePolicyText(text, 'p.yaml'), text };
}

/** Every route's busy and outage chains end at `end` (or are `end`). */
function assertChainsEndAt(p: CompiledPolicy, end: string): void {
  assert.equal(p.route(end).fallback, 'terminal');
  for (const r of p.routeNames) {
    if (r === end) continue;
    for (const kind of ['busy', 'outage'] as const) assert.equal(staticChain(p, r, kind, false).at(-1), end, `${r} ${kind}`);
  }
}

test('paramsFromName reads the size, not the active experts', () => {
  assert.equal(paramsFromName('qwen2.5-coder-32b-instruct'), 32);
  assert.equal(paramsFromName('qwen3.6-35b-a3b-fp8'), 35);
  assert.equal(paramsFromName('Llama-3.1-8B-Instruct'), 8);
  assert.equal(paramsFromName('glm-4.5-air-awq'), undefined);
});

test('two servers, code + chat: coding to the coder, chat to the other, chains end at the most capable', () => {
  const { policy: p, text } = compiled([
    up('gpu-code', 'qwen2.5-coder-32b-instruct', { context: told(32768, 'x'), slots: guessed(4, 'vLLM does not report max_num_seqs') }),
    up('gpu-chat', 'llama-3.1-8b-instruct', { runtime: 'llamacpp', runtimeLabel: 'llama.cpp', context: told(8192, 'x'), slots: told(4, 'x'), vision: told(false, 'x') }),
  ]);
  assert.equal(p.bucket('coding').route, 'gpu-code');
  assert.equal(p.bucket('agentic').route, 'gpu-code');
  assert.equal(p.bucket('reasoning').route, 'gpu-code');
  assert.equal(p.bucket('unknown').route, 'gpu-code');
  for (const b of ['general_chat', 'utility', 'medium_summary', 'notification', 'fast']) {
    assert.equal(p.bucket(b).route, 'gpu-chat', b);
    assert.equal(p.bucket(b).large, 'gpu-code', `${b}: big prompts go to the larger context`);
  }
  assertChainsEndAt(p, 'gpu-code');
  // Nothing sees: no image bucket, no image_route, so no blind route is ever offered an image.
  assert.equal(Object.hasOwn(p.doc.buckets, 'vision'), false);
  assert.ok(!p.doc.classifier.tie_break.includes('vision'));
  for (const b of p.bucketNames) assert.equal(p.bucket(b).image_route, undefined);
  assert.equal(p.modelToRoute.get('homelab/code'), 'gpu-code');
  assert.equal(p.modelToRoute.get('homelab/chat'), 'gpu-chat');
  assert.equal(p.modelToRoute.get('homelab/gpu-chat'), 'gpu-chat');
  // Guessed values say so, right above the key.
  assert.match(text, /# guessed: vLLM does not report max_num_seqs\n\s+slots: 4/);
  assert.match(text, /# guessed: vLLM does not say whether the model sees images; set true if it does\n\s+vision: false/);
  assert.doesNotMatch(text.split('gpu-chat:')[1]!.split('buckets:')[0]!, /guessed/);
});

test('vision buckets go only to routes that see; the camera escalates to another route that sees', () => {
  const { policy: p } = compiled([
    up('brain', 'qwen3.6-35b-a3b-fp8', { context: told(131072, 'x'), vision: told(true, 'x') }),
    up('eyes', 'qwen2.5-vl-7b-awq', { context: told(32768, 'x'), vision: told(true, 'x'), slots: told(8, 'x') }),
    up('mouth', 'gemma-4-31b', { runtime: 'lmstudio', runtimeLabel: 'LM Studio', context: told(32768, 'x'), vision: told(false, 'x'), slots: guessed(3, 'x') }),
  ]);
  const sees = (r: string | undefined) => r === undefined || p.route(r).vision;
  assert.equal(p.bucket('vision').route, 'eyes');
  assert.equal(p.bucket('camera').route, 'eyes');
  assert.equal(p.bucket('camera').fail_closed, true);
  assert.equal(p.bucket('camera').escalate_to, 'brain');
  for (const b of p.bucketNames) assert.ok(sees(p.bucket(b).image_route), `${b}.image_route sees`);
  // Images that spill from eyes go to brain (it sees), text to brain as well.
  assert.deepEqual(p.route('eyes').fallback, { busy: 'brain', busy_image: 'brain', outage: 'brain' });
  assert.equal(p.bucket('general_chat').route, 'mouth', 'chat goes to the machine with no other job');
  assert.equal(p.bucket('coding').route, 'brain', 'no code model, and no other route holds as long a context');
  assertChainsEndAt(p, 'brain');
});

test('the reference lab: each machine gets the job it has in routing_policy.yaml', () => {
  const { policy: p } = compiled([
    up('ubuntu-4090', 'qwen2.5-vl-7b-router-awq', { context: told(32768, 'x'), vision: told(true, 'x'), slots: told(8, 'x') }),
    up('ubuntu-6000', 'glm-4.5-air-awq', { context: told(131072, 'x'), slots: told(4, 'x') }),
    up('spark', 'qwen3.6-35b-a3b-fp8', { context: told(131072, 'x'), vision: told(true, 'x'), slots: told(4, 'x') }),
    up('win-5090', 'gemma-4-31b', { runtime: 'lmstudio', runtimeLabel: 'LM Studio', context: told(32768, 'x'), vision: told(false, 'x'), slots: told(3, 'x') }),
  ]);
  const routeOf = (b: string) => p.bucket(b).route;
  assert.deepEqual(
    ['camera', 'vision', 'coding', 'agentic', 'reasoning', 'unknown', 'general_chat', 'medium_summary'].map(routeOf),
    ['ubuntu-4090', 'ubuntu-4090', 'ubuntu-6000', 'ubuntu-6000', 'spark', 'spark', 'win-5090', 'win-5090'],
  );
  assert.equal(p.bucket('camera').escalate_to, 'spark');
  assertChainsEndAt(p, 'spark');
});

test('one server takes every bucket and is terminal', () => {
  const { policy: p } = compiled([up('only', 'mistral-7b-instruct', { runtime: 'openai', runtimeLabel: 'an OpenAI-compatible server' })]);
  for (const b of p.bucketNames) assert.equal(p.bucket(b).route, 'only');
  assert.equal(p.route('only').fallback, 'terminal');
  assert.equal(p.route('only').context_tokens, 8192);
  assert.equal(p.route('only').slots, 1);
});

test('two servers with the same model name: an error naming both, no plan', () => {
  const plan = planPolicy([up('a', 'same-model'), up('b', 'same-model')], TEMPLATE);
  assert.equal(plan.errors.length, 1);
  assert.match(plan.errors[0]!, /^a and b both serve "same-model"/);
});

test('a route named like a role alias keeps the role alias on the route with the role', () => {
  const { policy: p } = compiled([up('chat', 'big-70b', { context: told(65536, 'x') }), up('other', 'small-7b', { slots: told(8, 'x') })]);
  assert.equal(p.modelToRoute.get('homelab/chat'), 'other');
  assert.equal(p.modelToRoute.get('homelab/reasoning'), 'chat');
});

test('the written file is the plan: keys and values survive the YAML round trip', () => {
  const facts = [up('a', 'weird: "model" #1', { context: told(4096, 'x') }), up('b', 'tiny-1b')];
  const plan = planPolicy(facts, TEMPLATE);
  const doc = parseYaml(renderPolicy(plan, 'p.yaml')) as any;
  assert.equal(doc.routes.a.model, 'weird: "model" #1');
  assert.deepEqual(doc.buckets, JSON.parse(JSON.stringify(plan.doc.buckets)));
  assert.deepEqual(doc.routes, JSON.parse(JSON.stringify(plan.doc.routes)));
});

test('the written policy reads a job as the shipped one does: classifier settings, examples, on_code', () => {
  const { policy: p } = compiled([
    up('big', 'qwen3-235b-a22b', { context: told(131072, 'x') }),
    up('coder', 'qwen2.5-coder-32b-instruct', { context: told(65536, 'x') }),
    up('eyes', 'qwen2.5-vl-7b-instruct', { vision: told(true, 'x') }),
    up('quick', 'gemma-3-12b-it', { slots: told(8, 'x') }),
  ]);
  for (const key of ['scope', 'lookback_turns', 'lookback_below', 'new_topic', 'device_tools', 'chat_tools', 'scan_chars', 'parts', 'system', 'similarity'] as const) {
    assert.deepEqual(p.doc.classifier[key], shipped.classifier[key], key);
  }
  for (const [name, b] of Object.entries(shipped.buckets)) {
    assert.deepEqual(p.doc.buckets[name]?.examples, b.examples, `${name} examples`);
    assert.equal(p.doc.buckets[name]?.on_code, b.on_code, `${name} on_code`);
  }
  // The same bucket for every request of the clients' dev set (only the routes differ).
  const cfg = shipped.classifier;
  for (const c of readCases(new URL('../fixtures/routing-clients-dev.jsonl', import.meta.url).pathname)) {
    const facts = requestFacts(c.request, cfg.scope, cfg.lookback_turns);
    assert.equal(p.classifier.classify(facts).bucket, shippedPolicy.classifier.classify(facts).bucket, c.id);
  }
});
