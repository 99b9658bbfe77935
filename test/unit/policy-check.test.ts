import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump as dumpYaml } from 'js-yaml';
import { loadPolicyFile, parsePolicyText, PolicyError } from '../../router/policy/load.ts';
import { labDoc } from '../helpers/policies.ts';

function errorsOf(edit: (doc: any) => void): string[] {
  const doc = labDoc();
  edit(doc);
  try {
    parsePolicyText(dumpYaml(doc), 'test');
  } catch (err) {
    assert.ok(err instanceof PolicyError, `expected PolicyError, got ${err}`);
    return err.errors;
  }
  return [];
}

function assertError(edit: (doc: any) => void, expected: string | RegExp): void {
  const errors = errorsOf(edit);
  const hit = errors.some((e) => (typeof expected === 'string' ? e === expected : expected.test(e)));
  assert.ok(hit, `expected an error ${expected}; got:\n  ${errors.join('\n  ') || '(none)'}`);
}

test('the shipped policy is valid', () => {
  const p = loadPolicyFile('routing_policy.yaml');
  assert.deepEqual([...p.routeNames].sort(), ['spark', 'ubuntu-4090', 'ubuntu-6000', 'win-5090']);
  assert.match(p.hash, /^sha256:[0-9a-f]{64}$/);
});

test('the test lab policy is valid and gets schema defaults', () => {
  assert.deepEqual(errorsOf(() => {}), []);
  const p = parsePolicyText(dumpYaml(labDoc()));
  assert.equal(p.doc.server.max_body_bytes, 33554432);
  assert.equal(p.doc.routes.eyes!.queue_timeout_ms, 2000);
  assert.equal(p.doc.health.unhealthy_after, 2);
});

test('policy errors – an unknown key is named with its path', () => {
  assertError((d) => (d.routes.hands.slot = 3), 'routes.hands.slot: unknown key');
  assertError((d) => (d.surprise = true), 'surprise: unknown key');
});

test('policy errors – missing required keys and wrong types', () => {
  assertError((d) => delete d.routes.hands.model, 'routes.hands.model: is required');
  assertError((d) => (d.routes.hands.slots = 'four'), 'routes.hands.slots: must be integer');
  assertError((d) => (d.routes.hands.slots = 0), 'routes.hands.slots: must be >= 1');
  assertError((d) => (d.routes.hands.runtime = 'tgi'), /^routes\.hands\.runtime: must be one of "vllm"/);
  assertError((d) => (d.version = 2), 'version: must be 1');
  assertError((d) => (d.routes.hands.url = 'ftp://x'), /^routes\.hands\.url: must match pattern/);
});

test('policy errors – every route named by a bucket, fallback or alias must exist', () => {
  assertError((d) => (d.buckets.coding.route = 'hand'), 'buckets.coding.route: no route named "hand"');
  assertError((d) => (d.buckets.fast.medium = 'nowhere'), 'buckets.fast.medium: no route named "nowhere"');
  assertError((d) => (d.buckets.camera.escalate_to = 'x'), 'buckets.camera.escalate_to: no route named "x"');
  assertError((d) => (d.routes.hands.fallback.busy = 'mouht'), 'routes.hands.fallback.busy: no route named "mouht"');
  assertError((d) => (d.routes.hands.fallback.outage = 'x'), 'routes.hands.fallback.outage: no route named "x"');
});

test('policy errors – images may only be sent to routes that see', () => {
  assertError((d) => (d.buckets.notification.image_route = 'mouth'), /^buckets\.notification\.image_route: route "mouth" has no vision: true/);
  assertError((d) => (d.routes.eyes.fallback.busy_image = 'mouth'), /^routes\.eyes\.fallback\.busy_image: route "mouth" has no vision/);
  assertError((d) => {
    d.buckets.vision = { keywords: ['screenshot'], route: 'hands' };
  }, /^buckets\.vision\.route: the image bucket's route "hands" has no vision/);
});

test('policy errors – aliases and served names are unique', () => {
  assertError((d) => (d.routes.mouth.aliases = ['homelab/code']), 'routes.mouth.aliases[0]: "homelab/code" is already used by route "hands"');
  assertError((d) => (d.routes.mouth.model = 'hands-coder'), 'routes.mouth.model: "hands-coder" is already used by route "hands"');
  assertError((d) => (d.routes.mouth.aliases = ['homelab/auto']), /"homelab\/auto" is reserved/);
  assertError((d) => (d.routes.mouth.aliases = ['chat']), /^routes\.mouth\.aliases\.0: must match pattern/);
});

test('policy errors – fallback chains may not loop', () => {
  assertError((d) => (d.routes.brain.fallback = { outage: 'hands' }), /^routes\.\w+\.fallback\.outage: chain loops \(.*\)/);
  assertError((d) => {
    d.routes.mouth.fallback = { busy: 'hands' };
  }, /fallback\.busy: chain loops \((hands > mouth > hands|mouth > hands > mouth)\)/);
});

test('policy errors – tie_break names every bucket and only buckets', () => {
  assertError((d) => d.classifier.tie_break.push('cooking'), 'classifier.tie_break[8]: no bucket named "cooking"');
  assertError((d) => (d.classifier.tie_break = d.classifier.tie_break.filter((b: string) => b !== 'chat')), 'classifier.tie_break: must list every bucket; missing "chat"');
  assertError((d) => (d.classifier.default_bucket = 'nothing'), 'classifier.default_bucket: no bucket named "nothing"');
});

test('policy errors – limits that contradict each other', () => {
  assertError((d) => (d.routes.hands.timeout_ms = 60000), 'routes.hands.timeout_ms: 60000 must be less than server.request_timeout_ms (60000)');
  assertError((d) => (d.size_tiers = { medium: 300, large: 200 }), 'size_tiers.large: must be greater than size_tiers.medium (300)');
  assertError((d) => delete d.buckets.camera.escalate_to, 'buckets.camera.escalate_to: is required when fail_closed is true');
});

test('policy errors – recovery needs a known host', () => {
  assertError((d) => (d.routes.hands.recovery = { host: 'gpu9', restart: 'systemctl --user restart vllm' }), 'routes.hands.recovery.host: no host named "gpu9"');
  assertError((d) => (d.routes.hands.recovery = { restart: 'systemctl --user restart vllm' }), 'routes.hands.recovery.host: is required when a recovery command is set');
  assert.deepEqual(errorsOf((d) => (d.routes.brain.recovery = { managed: false })), []);
});

test('policy errors – broken YAML and non-mappings are reported, not thrown raw', () => {
  assert.throws(() => parsePolicyText('routes: [unclosed', 't'), (e: unknown) => e instanceof PolicyError && /^\(yaml\): /.test(e.errors[0]!));
  assert.throws(() => parsePolicyText('- a\n- b', 't'), (e: unknown) => e instanceof PolicyError && e.errors[0] === '(root): must be a mapping of policy keys');
  assert.throws(() => loadPolicyFile('/nonexistent/policy.yaml'), (e: unknown) => e instanceof PolicyError && /cannot read/.test(e.errors[0]!));
});

test('policy errors – all of them are reported at once', () => {
  const errors = errorsOf((d) => {
    d.buckets.coding.route = 'x';
    d.buckets.chat.route = 'y';
  });
  assert.equal(errors.length, 2);
});

test('the compiled policy is frozen and its hash ignores key order', () => {
  const a = labDoc();
  const p = parsePolicyText(dumpYaml(a));
  assert.ok(Object.isFrozen(p.doc.routes.hands));
  const reordered = { buckets: a.buckets, routes: a.routes, ...a };
  assert.equal(parsePolicyText(dumpYaml(reordered)).hash, p.hash);
  a.routes.hands.slots = 3;
  assert.notEqual(parsePolicyText(dumpYaml(a)).hash, p.hash);
});
