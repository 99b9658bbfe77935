// Refusals made before any handler runs (the edge's 415/403/421/408/413, the dispatcher's 405,
// the key gate's 401) reach an Anthropic client in Anthropic's envelope, and an OpenAI-protocol
// client (/v1/responses, /v1/completions, chat) in OpenAI's: one rule, http/envelope.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { startLab, type Lab } from '../helpers/lab.ts';

let lab: Lab;

before(async () => {
  lab = await startLab({
    edit: (doc) => {
      doc.server.max_body_bytes = 2048;
      doc.server.body_timeout_ms = 300;
      doc.server.allowed_hosts = ['127.0.0.1'];
    },
  });
});

after(() => lab.close());

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

/** One request with exactly these headers; `partial` sends that much body and then waits. */
function raw(method: string, path: string, headers: Record<string, string>, body?: string, partial?: string): Promise<Raw> {
  const { port } = new URL(lab.base);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, json: text ? JSON.parse(text) : null });
        req.destroy();
      });
    });
    req.on('error', reject);
    if (partial !== undefined) req.write(partial);
    else req.end(body);
  });
}

const JSON_CT = { 'content-type': 'application/json' };
const BODY = JSON.stringify({ model: 'homelab/code', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });

function assertAnthropic(r: Raw, status: number, type: string): void {
  assert.equal(r.status, status);
  assert.deepEqual(Object.keys(r.json), ['type', 'error'], JSON.stringify(r.json));
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, type);
  assert.equal(typeof r.json.error.message, 'string');
}

function assertOpenAI(r: Raw, status: number, code: string): void {
  assert.equal(r.status, status);
  assert.deepEqual(Object.keys(r.json), ['error'], JSON.stringify(r.json));
  assert.equal(r.json.error.code, code);
}

const refusals: Array<[string, (path: string) => Promise<Raw>, number, string, string]> = [
  ['415 content-type', (p) => raw('POST', p, { 'content-type': 'text/plain', 'content-length': String(BODY.length) }, BODY), 415, 'invalid_request_error', 'unsupported_media_type'],
  ['403 foreign origin', (p) => raw('POST', p, { ...JSON_CT, origin: 'http://evil.example', 'content-length': String(BODY.length) }, BODY), 403, 'permission_error', 'origin_not_allowed'],
  ['421 host', (p) => raw('POST', p, { ...JSON_CT, host: 'evil.example', 'content-length': String(BODY.length) }, BODY), 421, 'invalid_request_error', 'host_not_allowed'],
  ['405 method', (p) => raw('GET', p, {}), 405, 'invalid_request_error', 'method_not_allowed'],
  ['413 body too large', (p) => raw('POST', p, { ...JSON_CT, 'content-length': '4096' }, 'x'.repeat(4096)), 413, 'request_too_large', 'payload_too_large'],
  ['408 body too slow', (p) => raw('POST', p, { ...JSON_CT, 'content-length': '100' }, undefined, '{"model":'), 408, 'invalid_request_error', 'request_timeout'],
];

for (const [name, send, status, anthropicType, openaiCode] of refusals) {
  test(`${name}: Anthropic envelope on /v1/messages and count_tokens, OpenAI on /v1/responses, /v1/completions and chat`, async () => {
    assertAnthropic(await send('/v1/messages'), status, anthropicType);
    assertAnthropic(await send('/v1/messages/count_tokens?beta=true'), status, anthropicType);
    assertOpenAI(await send('/v1/responses'), status, openaiCode);
    assertOpenAI(await send('/v1/completions'), status, openaiCode);
    assertOpenAI(await send('/v1/chat/completions'), status, openaiCode);
  });
}

test('a path under /v1/messages the router does not serve: 404 in Anthropic\'s envelope', async () => {
  const r = await raw('POST', '/v1/messages/batches', { ...JSON_CT, 'content-length': '2' }, '{}');
  assertAnthropic(r, 404, 'not_found_error');
});

/** Bytes written as they are on one connection; the whole answer once the router closes it. */
function rawSocket(bytes: string): Promise<{ status: number; json: any }> {
  const { port } = new URL(lab.base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1', () => sock.write(bytes));
    let text = '';
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => (text += c));
    sock.on('error', reject);
    sock.on('close', () => {
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: Number(text.slice(9, 12)), json: JSON.parse(text.slice(split + 4)) });
    });
  });
}

test('a request that breaks HTTP is answered in its path\'s envelope too', async () => {
  const broken = (path: string) => rawSocket(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nbad header line\r\n\r\n`);
  const a = await broken('/v1/messages');
  assert.equal(a.status, 400);
  assert.deepEqual(Object.keys(a.json), ['type', 'error']);
  assert.equal(a.json.error.type, 'invalid_request_error');
  const o = await broken('/v1/responses');
  assert.equal(o.status, 400);
  assert.equal(o.json.error.code, 'invalid_request');
});
