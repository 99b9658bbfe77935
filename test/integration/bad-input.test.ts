// Bad input gets a clear 4xx in the OpenAI envelope and nothing reaches an upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startLab, leftovers, postJson, type Lab } from '../helpers/lab.ts';

let lab: Lab;
before(async () => {
  lab = await startLab({ edit: (doc) => (doc.server.max_body_bytes = 4096) });
});
after(() => lab.close());

function upstreamCalls(): number {
  return Object.values(lab.sims).reduce((n, s) => n + s.received.length, 0);
}

async function expectRejected(body: string | Buffer | object, status: number, code: string, message: RegExp, headers: Record<string, string> = {}): Promise<void> {
  const before = upstreamCalls();
  const raw = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const res = await fetch(lab.url + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
  const json = (await res.json()) as any;
  assert.equal(res.status, status, JSON.stringify(json));
  assert.equal(json.error.code, code);
  assert.equal(typeof json.error.type, 'string');
  assert.match(json.error.message, message);
  assert.ok(res.headers.get('x-request-id'));
  assert.equal(upstreamCalls(), before, 'nothing was forwarded');
  assert.deepEqual(leftovers(lab), {});
}

const msg = (content: unknown) => ({ model: 'homelab/auto', messages: [{ role: 'user', content }] });

test('malformed JSON → 400', () => expectRejected('{"model": "homelab/auto", "messages": [', 400, 'invalid_request', /not valid JSON/));
test('empty body → 400', () => expectRejected('', 400, 'invalid_request', /empty/));
test('a JSON array instead of an object → 400', () => expectRejected('[1,2]', 400, 'invalid_request', /body: must be a JSON object/));
test('missing messages → 400 naming the field', () => expectRejected({ model: 'homelab/auto' }, 400, 'invalid_request', /^messages: is required/));
test('empty messages → 400', () => expectRejected({ model: 'homelab/auto', messages: [] }, 400, 'invalid_request', /^messages: /));
test('mistyped messages → 400', () => expectRejected({ model: 'homelab/auto', messages: 'hi' }, 400, 'invalid_request', /^messages: /));
test('a message without a role → 400', () => expectRejected({ model: 'homelab/auto', messages: [{ content: 'hi' }] }, 400, 'invalid_request', /^messages\[0\]\.role: /));
test('mistyped content → 400', () => expectRejected(msg(42), 400, 'invalid_request', /^messages\[0\]\.content: /));
test('missing model → 400', () => expectRejected({ messages: [{ role: 'user', content: 'hi' }] }, 400, 'invalid_request', /^model: /));
test('mistyped stream → 400', () => expectRejected({ ...msg('hi'), stream: 'yes' }, 400, 'invalid_request', /^stream: must be a boolean/));
test('mistyped max_tokens → 400', () => expectRejected({ ...msg('hi'), max_tokens: -5 }, 400, 'invalid_request', /^max_tokens: /));
test('an unknown content-part type → 400', () => expectRejected(msg([{ type: 'video_url', video_url: { url: 'x' } }]), 400, 'invalid_request', /unknown content part type "video_url"/));
test('an image part without a url → 400', () => expectRejected(msg([{ type: 'image_url', image_url: {} }]), 400, 'invalid_request', /image_url\.url/));
test('an unknown homelab/* model → 404', () => expectRejected({ ...msg('hi'), model: 'homelab/turbo' }, 404, 'model_not_found', /"homelab\/turbo" does not exist/));
test('an unknown model → 404', () => expectRejected({ ...msg('hi'), model: 'gpt-4o' }, 404, 'model_not_found', /gpt-4o/));
test('an unknown route header → 400', () => expectRejected(msg('hi'), 400, 'invalid_request', /x-homelab-route: no route named "gpu-9"/, { 'x-homelab-route': 'gpu-9' }));
test('an unknown bucket header → 400', () => expectRejected(msg('hi'), 400, 'invalid_request', /x-homelab-bucket: no bucket named "cooking"/, { 'x-homelab-bucket': 'cooking' }));

test('invalid UTF-8 → 400', async () => {
  const head = Buffer.from('{"model":"homelab/auto","messages":[{"role":"user","content":"');
  const tail = Buffer.from('"}]}');
  await expectRejected(Buffer.concat([head, Buffer.from([0xc3, 0x28, 0xff]), tail]), 400, 'invalid_request', /not valid UTF-8/);
});

test('an oversized body → 413 from the declared length, before it is read', () => expectRejected(msg('x'.repeat(5000)), 413, 'payload_too_large', /max_body_bytes \(4096 bytes\)/));

test('an oversized chunked body → 413 once the limit is passed', async () => {
  const before = upstreamCalls();
  const port = Number(new URL(lab.base).port);
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.write('{"model":"homelab/auto","messages":[{"role":"user","content":"');
    req.write('y'.repeat(8000));
    req.end('"}]}');
  });
  assert.equal(status, 413);
  assert.equal(JSON.parse(body).error.code, 'payload_too_large');
  assert.equal(upstreamCalls(), before);
});

test('wrong method and unknown path answer in the envelope', async () => {
  const get = await fetch(lab.url + '/chat/completions');
  assert.equal(get.status, 405);
  assert.equal(((await get.json()) as any).error.code, 'method_not_allowed');
  const missing = await fetch(lab.base + '/v2/nothing');
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as any).error.code, 'not_found');
});

test('bad explain input is rejected the same way', async () => {
  const r = await postJson(lab.url + '/route/explain', { model: 'homelab/auto' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'invalid_request');
});
