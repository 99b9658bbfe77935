// SPEC §4 "Browsers and foreign pages" and the request forms monitors and SDKs use: a web page
// on the LAN cannot drive the GPUs (415, 403, 421 before any upstream is called), listed
// origins get CORS, HEAD works wherever GET does, absolute-form targets and /v1/models/{id}.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { leftovers, startLab, type Lab } from '../helpers/lab.ts';

const UI_ORIGIN = 'http://ui.lan:8080';

function upstreamCalls(lab: Lab): number {
  return Object.values(lab.sims).reduce((n, s) => n + s.received.length, 0);
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** node:http, which (unlike fetch) lets a test set Host and send absolute-form targets. */
function raw(lab: Lab, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Raw> {
  const port = (lab.server.address() as AddressInfo).port;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: any = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const chatBody = JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: 'Refactor this FastAPI endpoint' }] });

describe('default policy (no listed origin, any host)', () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab();
  });
  after(() => lab.close());

  async function refused(r: Promise<Raw>, status: number, code: string, message: RegExp): Promise<void> {
    const before = upstreamCalls(lab);
    const res = await r;
    assert.equal(res.status, status, res.text);
    assert.equal(res.json.error.code, code);
    assert.match(res.json.error.message, message);
    assert.equal(upstreamCalls(lab), before, 'no upstream was called');
    assert.deepEqual(leftovers(lab), {});
  }

  test('a text/plain POST (what a cross-site form or fetch sends) → 415 naming the header to send', () =>
    refused(raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'text/plain' }, chatBody), 415, 'unsupported_media_type', /content-type: application\/json/));
  test('form-encoded and missing content-types → 415', async () => {
    await refused(raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/x-www-form-urlencoded' }, chatBody), 415, 'unsupported_media_type', /application\/x-www-form-urlencoded/);
    await refused(raw(lab, 'POST', '/v1/embeddings', {}, chatBody), 415, 'unsupported_media_type', /No content-type/);
    await refused(raw(lab, 'POST', '/v1/route/explain', { 'content-type': 'multipart/form-data; boundary=x' }, chatBody), 415, 'unsupported_media_type', /content-type: application\/json/);
  });
  test('a compressed body → 415', () => refused(raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, chatBody), 415, 'unsupported_media_type', /content-encoding "gzip"/));
  test('application/json with a charset is served', async () => {
    const r = await raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'Application/JSON; charset=utf-8' }, chatBody);
    assert.equal(r.status, 200, r.text);
  });

  test('a foreign Origin → 403 on every endpoint, and no upstream is called', async () => {
    await refused(raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', origin: 'http://evil.example' }, chatBody), 403, 'origin_not_allowed', /http:\/\/evil\.example.*server\.cors_origins/);
    await refused(raw(lab, 'GET', '/v1/models', { origin: 'http://evil.example' }), 403, 'origin_not_allowed', /evil/);
    await refused(raw(lab, 'POST', '/admin/drain/spark', { origin: 'null' }), 403, 'origin_not_allowed', /null/);
    const pre = await raw(lab, 'OPTIONS', '/v1/chat/completions', { origin: 'http://evil.example', 'access-control-request-method': 'POST' });
    assert.equal(pre.status, 403);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    const metrics = await raw(lab, 'GET', '/metrics');
    assert.match(metrics.text, /^homelab_router_requests_total\{route="none",bucket="none",reason="origin_not_allowed",code="403"\} [1-9]/m);
  });

  test('the router\'s own origin (its /ui/ pages) is served, without CORS headers', async () => {
    const port = (lab.server.address() as AddressInfo).port;
    const r = await raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` }, chatBody);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });

  test('HEAD answers wherever GET does, with GET\'s headers and no body', async () => {
    for (const path of ['/v1/models', '/v1/models/homelab/auto', '/healthz', '/readyz', '/metrics', '/stats']) {
      const get = await raw(lab, 'GET', path);
      const head = await raw(lab, 'HEAD', path);
      assert.equal(head.status, get.status, path);
      assert.equal(head.headers['content-type'], get.headers['content-type'], path);
      assert.equal(head.text, '', path);
    }
    const post = await raw(lab, 'HEAD', '/v1/chat/completions');
    assert.equal(post.status, 405);
    assert.match(String(post.headers.allow), /POST/);
    const allow = await raw(lab, 'POST', '/v1/models', { 'content-type': 'application/json' }, '{}');
    assert.equal(allow.status, 405);
    assert.equal(allow.headers.allow, 'GET, HEAD');
  });

  test('absolute-form targets are served like origin-form ones', async () => {
    const port = (lab.server.address() as AddressInfo).port;
    const r = await raw(lab, 'POST', `http://127.0.0.1:${port}/v1/chat/completions`, { 'content-type': 'application/json' }, chatBody);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-homelab-route'], 'ubuntu-6000');
    const models = await raw(lab, 'GET', `http://127.0.0.1:${port}/v1/models?x=1`);
    assert.equal(models.status, 200);
    assert.equal(models.json.object, 'list');
    const stats = await raw(lab, 'GET', `http://127.0.0.1:${port}/stats`);
    assert.equal(stats.status, 200);
  });

  test('GET /v1/models/{id} for every id /v1/models lists; an unknown id → 404', async () => {
    const list = await raw(lab, 'GET', '/v1/models');
    assert.ok(list.json.data.length > 4);
    for (const m of list.json.data) {
      const one = await raw(lab, 'GET', `/v1/models/${m.id}`);
      assert.equal(one.status, 200, m.id);
      assert.deepEqual(one.json, m);
    }
    const encoded = await raw(lab, 'GET', '/v1/models/homelab%2Fauto');
    assert.equal(encoded.json.id, 'homelab/auto');
    const missing = await raw(lab, 'GET', '/v1/models/homelab/turbo');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'model_not_found');
  });
});

describe('listed origins and allowed hosts', () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ edit: (d) => Object.assign(d.server, { cors_origins: [UI_ORIGIN], allowed_hosts: ['127.0.0.1', 'router.lan:4000'] }) });
  });
  after(() => lab.close());

  test('a listed origin gets CORS headers on its answers', async () => {
    const r = await raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', origin: UI_ORIGIN }, chatBody);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['access-control-allow-origin'], UI_ORIGIN);
    assert.match(String(r.headers.vary), /Origin/);
    assert.match(String(r.headers['access-control-expose-headers']), /x-homelab-route/);
    const err = await raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', origin: UI_ORIGIN }, '{');
    assert.equal(err.status, 400);
    assert.equal(err.headers['access-control-allow-origin'], UI_ORIGIN);
  });

  test('a preflight from a listed origin is answered; nothing reaches an upstream', async () => {
    const before = upstreamCalls(lab);
    const r = await raw(lab, 'OPTIONS', '/v1/chat/completions', { origin: UI_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization, x-homelab-bucket' });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], UI_ORIGIN);
    assert.match(String(r.headers['access-control-allow-methods']), /POST/);
    assert.equal(r.headers['access-control-allow-headers'], 'content-type, authorization, x-homelab-bucket');
    assert.ok(Number(r.headers['access-control-max-age']) > 0);
    assert.equal(upstreamCalls(lab), before);
  });

  test('another origin is still refused', async () => {
    const r = await raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', origin: 'http://ui.lan:9090' }, chatBody);
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'origin_not_allowed');
  });

  test('a Host not in server.allowed_hosts → 421 (DNS rebinding), a listed one is served', async () => {
    const before = upstreamCalls(lab);
    for (const host of ['evil.example', 'evil.example:4000', 'router.lan:5000']) {
      const r = await raw(lab, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', host }, chatBody);
      assert.equal(r.status, 421, host);
      assert.equal(r.json.error.code, 'host_not_allowed');
      assert.match(r.json.error.message, /server\.allowed_hosts/);
    }
    assert.equal(upstreamCalls(lab), before);
    for (const host of ['router.lan:4000', 'ROUTER.lan:4000']) {
      const ok = await raw(lab, 'GET', '/v1/models', { host });
      assert.equal(ok.status, 200, host);
    }
    // An absolute-form target names the host itself.
    const abs = await raw(lab, 'GET', 'http://evil.example/v1/models', { host: '127.0.0.1' });
    assert.equal(abs.status, 421);
  });
});
