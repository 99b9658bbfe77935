// withModel: the client's JSON with only its top-level "model" value changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withModel } from '../../router/proxy/upstream-body.ts';

function same(json: string, model: string): void {
  const out = withModel(json, model);
  assert.ok(out !== undefined, `withModel gave up on ${json}`);
  assert.deepEqual(JSON.parse(out), { ...(JSON.parse(json) as object), model });
}

test('withModel: replaces the top-level model and leaves every other byte alone', () => {
  const json = '{"model":"homelab/auto","messages":[{"role":"user","content":"hi"}],"temperature":0.10}';
  assert.equal(withModel(json, 'qwen3-coder'), '{"model":"qwen3-coder","messages":[{"role":"user","content":"hi"}],"temperature":0.10}');
});

test('withModel: "model" inside messages, metadata, tools or string content is not touched', () => {
  const json = JSON.stringify({
    metadata: { model: 'keep-1' },
    messages: [{ role: 'user', content: 'the JSON was {"model": "keep-2"} and "model":"keep-3"' }],
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { model: { type: 'string' } } } } }],
    model: 'homelab/auto',
  });
  const out = withModel(json, 'served')!;
  assert.deepEqual(JSON.parse(out), { ...JSON.parse(json), model: 'served' });
  for (const kept of ['keep-1', 'keep-2', 'keep-3']) assert.ok(out.includes(kept));
});

test('withModel: whitespace, escapes before the model, and a duplicate key', () => {
  same('{\n  "messages" : [ { "role" : "user", "content" : "a \\" quote, a \\\\ slash\\\\" } ],\n  "model" :\t"homelab/auto"\n}', 'm');
  same('{"model":"a","stream":true,"model":"b"}', 'm');
  same('{"messages":[],"n":2,"stop":["\\"","\\\\"],"model":"x\\"y"}', 'served/with"quote');
});

test('withModel: what the client wrote stays as written (big integers, number spellings, key order)', () => {
  const json = '{"seed":12345678901234567890,"model":"homelab/auto","top_p":1e-1,"z":1,"a":2}';
  assert.equal(withModel(json, 'm'), '{"seed":12345678901234567890,"model":"m","top_p":1e-1,"z":1,"a":2}');
});

test('withModel: gives up (undefined) rather than guess', () => {
  assert.equal(withModel('{"mod\\u0065l":"homelab/auto"}', 'm'), undefined, 'an escaped key could be "model"');
  assert.equal(withModel('{"model":null}', 'm'), undefined, 'a model that is not a string');
  assert.equal(withModel('{"messages":[]}', 'm'), undefined, 'no model at all');
});

test('withModel: agrees with parse-and-stringify on 500 generated bodies', () => {
  let seed = 20261121;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const strings = ['', 'model', '"model":"x"', 'a "q" b', 'back\\slash', 'tab\tnew\nline', 'ünïcødé ✓', '\u2028', '{[,:]}'];
  const value = (depth: number): unknown => {
    const r = rand();
    if (depth > 3 || r < 0.3) return pick<unknown>([pick(strings), Math.floor(rand() * 1e6) - 5e5, rand(), true, false, null]);
    if (r < 0.6) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let k = Math.floor(rand() * 4); k > 0; k--) o[pick(['model', 'content', 'role', 'x', 'a"b', 'c\\d'])] = value(depth + 1);
    return o;
  };
  for (let i = 0; i < 500; i++) {
    const body: Record<string, unknown> = {};
    for (let k = Math.floor(rand() * 5); k > 0; k--) body[pick(['messages', 'metadata', 'tools', 'x'])] = value(1);
    body.model = pick(strings);
    const json = JSON.stringify(body, null, rand() < 0.3 ? 2 : undefined);
    same(json, pick(['m', 'served/"quoted"', 'ünï']));
  }
});
