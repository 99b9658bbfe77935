import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestFacts, type ChatBody } from '../../router/classify/request-facts.ts';
import { decide, sizeTier, type Decision } from '../../router/decide/engine.ts';
import type { RouteStatus } from '../../router/decide/chain.ts';
import { RouterError } from '../../router/errors.ts';
import { labPolicy } from '../helpers/policies.ts';

const policy = labPolicy();
const IMG = { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } };
const allUp = (): RouteStatus => ({ healthy: true, drained: false });

function body(content: unknown, extra: Partial<ChatBody> = {}): ChatBody {
  return { model: 'homelab/auto', messages: [{ role: 'user', content: content as string }], ...extra };
}

function run(b: ChatBody, opts: { route?: string; bucket?: string; state?: Record<string, Partial<RouteStatus>>; p?: typeof policy } = {}): Decision {
  const p = opts.p ?? policy;
  const view = (r: string): RouteStatus => ({ healthy: true, drained: false, ...opts.state?.[r] });
  return decide({ facts: requestFacts(b, 'last_user', 2), headerRoute: opts.route, headerBucket: opts.bucket }, p, view);
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RouterError);
    return `${err.status} ${err.code}`;
  }
  return 'no error';
}

test('classifier – keywords pick the bucket and its route', () => {
  const d = run(body('please refactor this python module'));
  assert.equal(d.bucket, 'coding');
  assert.equal(d.route, 'hands');
  assert.equal(d.reason, 'bucket_match');
  assert.deepEqual(d.matched.coding, ['refactor', 'python']);
  assert.equal(d.scores.coding, 2);
});

test('classifier – nothing matched goes to default_bucket', () => {
  const d = run(body('qwpoeiru'));
  assert.equal(d.bucket, 'unknown');
  assert.equal(d.route, 'brain');
  assert.equal(d.reason, 'default_bucket');
});

test('classifier – equal scores break by tie_break order', () => {
  // coding precedes reasoning in tie_break
  assert.equal(run(body('refactor the architecture')).bucket, 'coding');
  const swapped = labPolicy((doc) => (doc.classifier.tie_break = ['camera', 'vision', 'reasoning', 'coding', 'fast', 'notification', 'chat', 'unknown']));
  assert.equal(run(body('refactor the architecture'), { p: swapped }).bucket, 'reasoning');
});

test('classifier – a tools array is a structural signal', () => {
  const d = run(body('do the thing', { tools: [{ type: 'function', function: { name: 'x' } }] }));
  assert.equal(d.bucket, 'coding');
  assert.deepEqual(d.matched.coding, ['signal:tools']);
});

test('header override – x-homelab-route pins, x-homelab-bucket picks the bucket', () => {
  const pinned = run(body('tell me a joke'), { route: 'hands' });
  assert.equal(pinned.route, 'hands');
  assert.equal(pinned.reason, 'header_route');
  assert.equal(pinned.pinned, true);
  const bucket = run(body('tell me a joke'), { bucket: 'reasoning' });
  assert.equal(bucket.route, 'brain');
  assert.equal(bucket.reason, 'header_bucket');
  assert.equal(bucket.pinned, false);
});

test('header override – unknown route or bucket is a 400', () => {
  assert.equal(code(() => run(body('x'), { route: 'gpu9' })), '400 invalid_request');
  assert.equal(code(() => run(body('x'), { bucket: 'cooking' })), '400 invalid_request');
});

test('pinned model – alias or served name pins; unknown model is 404', () => {
  assert.equal(run(body('tell me a joke', { model: 'homelab/code' })).route, 'hands');
  const served = run(body('tell me a joke', { model: 'mouth-31b' }));
  assert.equal(served.route, 'mouth');
  assert.equal(served.reason, 'pinned_model');
  assert.equal(served.pinned, true);
  assert.equal(code(() => run(body('x', { model: 'homelab/nope' }))), '404 model_not_found');
  assert.equal(code(() => run(body('x', { model: 'gpt-4o' }))), '404 model_not_found');
});

test('precedence – header route beats pinned model beats metadata beats classifier', () => {
  const b = body('refactor python', { model: 'homelab/chat', metadata: { bucket: 'reasoning' } });
  assert.equal(run(b, { route: 'brain' }).reason, 'header_route');
  assert.equal(run(b, { bucket: 'fast' }).reason, 'header_bucket');
  assert.equal(run(b).reason, 'pinned_model');
  assert.equal(run(body('refactor python', { metadata: { bucket: 'reasoning' } })).reason, 'metadata_bucket');
  assert.equal(code(() => run(body('x', { metadata: { bucket: 'cooking' } }))), '400 invalid_request');
});

test('image – always goes to a vision route, whatever the bucket said', () => {
  const d = run(body([{ type: 'text', text: 'refactor this python' }, IMG]));
  assert.equal(d.bucket, 'coding');
  assert.equal(d.route, 'eyes');
  assert.equal(d.reason, 'image');
  assert.equal(d.hasImage, true);
});

test('image – a bucket image_route is used; a pin to a vision route is kept; a pin to a blind route is not', () => {
  assert.equal(run(body([{ type: 'text', text: 'write a push notification' }, IMG])).route, 'eyes');
  const keep = run(body([{ type: 'text', text: 'x' }, IMG], { model: 'homelab/reasoning' }));
  assert.equal(keep.route, 'brain');
  assert.equal(keep.pinned, true);
  const blind = run(body([{ type: 'text', text: 'x' }, IMG], { model: 'homelab/chat' }));
  assert.equal(blind.route, 'eyes');
  assert.equal(blind.reason, 'image');
  assert.equal(run(body([{ type: 'text', text: 'x' }, IMG]), { route: 'mouth' }).route, 'eyes');
});

test('image – a fail-closed bucket keeps its bucket (and stays fail-closed) on the image route', () => {
  const d = run(body([{ type: 'text', text: 'frigate event' }, IMG]));
  assert.equal(d.bucket, 'camera');
  assert.equal(d.route, 'eyes');
  assert.equal(d.failClosed, true);
  assert.equal(d.escalateTo, 'brain');
});

test('image – fallbacks skip blind routes: the busy chain uses busy_image', () => {
  const d = run(body([{ type: 'text', text: 'describe' }, IMG]));
  assert.deepEqual(d.fallbackChain, { busy: ['brain'], outage: ['brain'] });
  const text = run(body('classify this'));
  assert.deepEqual(text.fallbackChain, { busy: ['mouth', 'brain'], outage: ['brain'] });
});

test('image – size promotion to a blind route is ignored', () => {
  const p = labPolicy((doc) => {
    doc.size_tiers = { medium: 100, large: 5000 };
    doc.buckets.fast.medium = 'mouth';
  });
  const d = run(body([{ type: 'text', text: 'classify this' }, IMG]), { p });
  assert.equal(d.sizeTier, 'medium');
  assert.equal(d.route, 'eyes');
  assert.equal(run(body('classify ' + 'x'.repeat(500)), { p }).route, 'mouth');
});

test('size tiers – exact boundaries: small <= medium < medium <= large < large', () => {
  const tiers = { medium: 100, large: 200 };
  assert.equal(sizeTier(100, tiers), 'small');
  assert.equal(sizeTier(101, tiers), 'medium');
  assert.equal(sizeTier(200, tiers), 'medium');
  assert.equal(sizeTier(201, tiers), 'large');
});

test('size tiers – the estimate is ceil(chars / 4) + 1000 per image', () => {
  assert.equal(run(body('json ' + 'x'.repeat(395))).estimatedTokens, 100);
  assert.equal(run(body('json ' + 'x'.repeat(396))).estimatedTokens, 101);
  assert.equal(run(body([{ type: 'text', text: 'abcd' }, IMG, IMG])).estimatedTokens, 2001);
  // Every message counts, not only the scored one; an emoji is one character.
  const multi: ChatBody = { model: 'homelab/auto', messages: [{ role: 'system', content: 'abcd' }, { role: 'user', content: '😀😀😀😀' }] };
  assert.equal(run(multi).estimatedTokens, 2);
});

test('size tiers – a bucket promotes at medium and large', () => {
  const at = (chars: number) => run(body('json ' + 'x'.repeat(chars - 5)));
  assert.equal(at(400).route, 'eyes');
  const medium = at(404 + 1);
  assert.equal(medium.sizeTier, 'medium');
  assert.equal(medium.route, 'hands');
  assert.equal(medium.reason, 'size_medium');
  const large = at(804 + 1);
  assert.equal(large.sizeTier, 'large');
  assert.equal(large.route, 'brain');
  assert.equal(large.reason, 'size_large');
});

test('context guard – a route too small is skipped like an outage', () => {
  // mouth holds 300 tokens; 150 prompt + 200 max_tokens does not fit, so it goes down mouth's outage chain.
  const d = run(body('tell me a joke ' + 'x'.repeat(585), { max_tokens: 200 }));
  assert.equal(d.sizeTier, 'medium');
  assert.equal(d.bucket, 'chat');
  assert.equal(d.route, 'brain');
  assert.equal(d.reason, 'mouth_too_small');
  assert.deepEqual(d.skipped, [{ route: 'mouth', why: 'too_small' }]);
});

test('context guard – a pinned request that fits nowhere it may go is 400 context_length_exceeded', () => {
  const d = run(body('x'.repeat(2000), { model: 'homelab/chat' }));
  assert.equal(d.route, null);
  assert.equal(d.error?.code, 'context_length_exceeded');
  assert.equal(d.error?.status, 400);
  const everywhere = run(body('x'.repeat(40000)));
  assert.equal(everywhere.error?.code, 'context_length_exceeded');
});

test('drain – auto traffic skips a drained route like a busy one; pins pass through', () => {
  const d = run(body('refactor python'), { state: { hands: { drained: true } } });
  assert.equal(d.route, 'mouth');
  assert.equal(d.reason, 'hands_drained');
  assert.deepEqual(d.skipped, [{ route: 'hands', why: 'drained' }]);
  assert.equal(run(body('refactor python', { model: 'homelab/code' }), { state: { hands: { drained: true } } }).route, 'hands');
  assert.equal(run(body('x'), { route: 'hands', state: { hands: { drained: true } } }).route, 'hands');
});

test('health – an unhealthy route is skipped like an outage; a pinned one is a 503', () => {
  const d = run(body('refactor python'), { state: { hands: { healthy: false } } });
  assert.equal(d.route, 'brain');
  assert.equal(d.reason, 'hands_unhealthy');
  const pinned = run(body('x', { model: 'homelab/code' }), { state: { hands: { healthy: false } } });
  assert.equal(pinned.route, null);
  assert.equal(pinned.error?.code, 'upstream_unavailable');
  assert.ok((pinned.error?.retryAfterS ?? 0) >= 1);
});

test('terminal – the senior route never falls back: down means 503', () => {
  const d = run(body('qwpoeiru'), { state: { brain: { healthy: false } } });
  assert.equal(d.route, null);
  assert.equal(d.error?.code, 'upstream_unavailable');
  assert.deepEqual(d.fallbackChain, { busy: [], outage: [] });
  assert.deepEqual(run(body('qwpoeiru')).fallbackChain, { busy: [], outage: [] });
});

test('everything down – 503 names what was skipped', () => {
  const down = { eyes: { healthy: false }, hands: { healthy: false }, brain: { healthy: false }, mouth: { healthy: false } };
  const d = run(body('refactor python'), { state: down });
  assert.equal(d.route, null);
  assert.match(d.error!.message, /hands unhealthy, brain unhealthy/);
});

test('determinism – the same input always gives the same decision', () => {
  const b = body([{ type: 'text', text: 'Refactor the python json classifier architecture' }, IMG], { max_tokens: 50 });
  const first = run(b);
  for (let i = 0; i < 20; i++) assert.deepEqual(run(b), first);
  void allUp;
});
