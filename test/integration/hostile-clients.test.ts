// Clients that stall, trickle, flood or overshoot: each gets a clean answer in the OpenAI
// envelope (408, 413), the listener stays bounded, and nothing reaches an upstream or leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { assertSettled, labFor, sseEvents, type Lab } from '../helpers/faults.ts';
import { pollUntil } from '../helpers/poll.ts';

const MiB = 1024 * 1024;

function upstreamCalls(lab: Lab): number {
  return Object.values(lab.sims).reduce((n, s) => n + s.received.length, 0);
}

function port(lab: Lab): number {
  return (lab.server.address() as AddressInfo).port;
}

/** What came back on a raw connection: the bytes, and how it ended. */
interface RawReply {
  text: string;
  status: number | null;
  json: any;
  ended: 'end' | 'error';
  error?: string;
}

/** A raw connection: `open` writes what it is given; `reply` resolves once the server closes it. */
function rawConnection(lab: Lab): { socket: Socket; reply: Promise<RawReply> } {
  const socket = connect(port(lab), '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  const reply = new Promise<RawReply>((resolve) => {
    const done = (ended: RawReply['ended'], error?: string) => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      let json: any = null;
      try {
        json = JSON.parse(body);
      } catch {
        /* not JSON */
      }
      resolve({ text, status: status ? Number(status[1]) : null, json, ended, ...(error ? { error } : {}) });
    };
    socket.on('error', (e: NodeJS.ErrnoException) => done('error', e.code));
    socket.on('close', () => done('end'));
  });
  return { socket, reply };
}

const head = (len: number | 'chunked', path = '/v1/chat/completions') =>
  `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${len === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${len}`}\r\n\r\n`;

const smallChat = JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: 'hello' }] });

// ---- item 2: slow and stalled clients -------------------------------------------------------

test('a body that stops gets 408 in the envelope and the connection closes', { timeout: 15_000 }, async (t) => {
  const lab = await labFor(t, { edit: (d) => Object.assign(d.server, { body_timeout_ms: 300, headers_timeout_ms: 300 }) });
  const { socket, reply } = rawConnection(lab);
  socket.write(head(smallChat.length) + smallChat.slice(0, 10));
  const r = await reply;
  assert.equal(r.status, 408, r.text);
  assert.equal(r.json.error.code, 'request_timeout');
  assert.match(r.json.error.message, /server\.body_timeout_ms \(300 ms; 10 bytes came\)/);
  assert.match(r.text, /\r\nconnection: close\r\n/i);
  assert.match(r.text, /\r\nx-request-id: /i);
  assert.equal(upstreamCalls(lab), 0);
  await assertSettled(lab);
});

test('a body that trickles a byte at a time gets 408 once its deadline passes', { timeout: 15_000 }, async (t) => {
  const lab = await labFor(t, { edit: (d) => Object.assign(d.server, { body_timeout_ms: 400 }) });
  const { socket, reply } = rawConnection(lab);
  socket.write(head(smallChat.length));
  let sent = 0;
  // Bounded: at most the body's length in bytes, one every 40 ms, stopped by the answer.
  const drip = setInterval(() => {
    if (sent < smallChat.length - 1 && !socket.destroyed) socket.write(smallChat[sent++]!);
  }, 40);
  const r = await reply;
  clearInterval(drip);
  assert.equal(r.status, 408, r.text);
  assert.equal(r.json.error.code, 'request_timeout');
  assert.ok(sent < smallChat.length, 'answered before the body was complete');
  assert.equal(upstreamCalls(lab), 0);
  await assertSettled(lab);
});

test('headers that never finish get 408 in the envelope', { timeout: 15_000 }, async (t) => {
  const lab = await labFor(t, { edit: (d) => Object.assign(d.server, { headers_timeout_ms: 300, body_timeout_ms: 300 }) });
  const { socket, reply } = rawConnection(lab);
  socket.write('POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n');
  const r = await reply;
  assert.equal(r.status, 408, r.text);
  assert.equal(r.json.error.code, 'request_timeout');
  assert.equal(upstreamCalls(lab), 0);
});

test('a stream may run far longer than the request deadlines', { timeout: 20_000 }, async (t) => {
  // 12 chunks 120 ms apart: ~1.4 s of streaming against 200 ms header and body deadlines.
  const lab = await labFor(t, { edit: (d) => Object.assign(d.server, { headers_timeout_ms: 200, body_timeout_ms: 200 }), sim: { 'ubuntu-6000': { chunks: 12, tokenIntervalMs: 120 } } });
  const res = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'homelab/code', stream: true, messages: [{ role: 'user', content: 'Refactor this FastAPI endpoint' }] }) });
  assert.equal(res.status, 200);
  const events = sseEvents(await res.text());
  assert.equal(events.at(-1)?.data, '[DONE]');
  assert.ok(!events.some((e) => e.event === 'error'));
  assert.ok(events.length >= 12);
  await assertSettled(lab);
});

test('connections are bounded by server.max_connections; stalled ones are freed by the deadline', { timeout: 20_000 }, async (t) => {
  const lab = await labFor(t, { edit: (d) => Object.assign(d.server, { max_connections: 4, body_timeout_ms: 5000, headers_timeout_ms: 5000 }) });
  const connections = () => new Promise<number>((resolve, reject) => lab.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  const stalled = Array.from({ length: 4 }, () => rawConnection(lab));
  for (const s of stalled) s.socket.write(head(smallChat.length) + '{');
  await pollUntil('4 connections held', async () => ((await connections()) === 4 ? true : undefined), { tries: 100, everyMs: 20 });
  const warnings: string[] = [];
  const warn = lab.svc.logs.service.warn.bind(lab.svc.logs.service);
  lab.svc.logs.service.warn = ((obj: unknown, msg?: string) => (warnings.push(String(msg)), warn(obj as object, msg))) as typeof warn;
  // Six more while the four are held: each is closed on arrival, none is served.
  const extra = Array.from({ length: 6 }, () => rawConnection(lab));
  for (const e of extra) e.socket.write(head(smallChat.length) + smallChat);
  const refused = await Promise.all(extra.map((e) => e.reply));
  for (const r of refused) assert.equal(r.status, null, 'not served while the limit is reached');
  assert.ok((await connections()) <= 4);
  assert.deepEqual(warnings, ['server.max_connections (4) reached: new connections are closed as they arrive'], 'one warning, not one per connection');
  // The stalled four get their 408; then the listener serves again.
  for (const r of await Promise.all(stalled.map((s) => s.reply))) assert.equal(r.status, 408, r.text);
  const ok = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: smallChat });
  assert.equal(ok.status, 200);
  await ok.text();
  assert.equal(upstreamCalls(lab), 1);
  await assertSettled(lab);
});

// ---- item 3: oversized bodies reach the client as 413 ---------------------------------------

const overLimit = (size: number) => JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: 'a'.repeat(size) }] });

test('fetch posting 6 MB against a 4 MB limit gets the 413 every time', { timeout: 60_000 }, async (t) => {
  const lab = await labFor(t, { edit: (d) => (d.server.max_body_bytes = 4 * MiB) });
  const body = overLimit(6 * MiB);
  const bytes = Buffer.from(body);
  // As a string (fetch sends a content-length) and as a stream of 64 KiB pieces (chunked).
  const streamed = () => new ReadableStream<Uint8Array>({
    start(c) {
      for (let at = 0; at < bytes.length; at += 64 * 1024) c.enqueue(bytes.subarray(at, at + 64 * 1024));
      c.close();
    },
  });
  for (let i = 0; i < 8; i++) {
    const init = i % 2 === 0 ? { body } : { body: streamed(), duplex: 'half' };
    const res = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...init } as RequestInit).catch((err: Error & { cause?: { code?: string } }) => {
      assert.fail(`try ${i}: ${err.cause?.code ?? err.message} instead of the 413`);
    });
    assert.equal(res.status, 413, `try ${i}`);
    assert.equal(((await res.json()) as any).error.code, 'payload_too_large');
  }
  assert.equal(upstreamCalls(lab), 0);
  await assertSettled(lab);
});

/** Writes `data` in 64 KiB pieces, each after the last was taken, reading nothing meanwhile. */
async function writeInPieces(socket: Socket, data: Buffer): Promise<string | null> {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    const err = await new Promise<Error | null | undefined>((resolve) => socket.write(data.subarray(at, at + 64 * 1024), resolve));
    if (err) return (err as NodeJS.ErrnoException).code ?? err.message;
  }
  return null;
}

test('a client that writes its whole oversized body before reading still reads the 413', { timeout: 60_000 }, async (t) => {
  const lab = await labFor(t, { edit: (d) => (d.server.max_body_bytes = 4 * MiB) });
  const body = Buffer.from(overLimit(6 * MiB));
  for (const framing of ['length', 'chunked'] as const) {
    for (let i = 0; i < 3; i++) {
      const { socket, reply } = rawConnection(lab);
      socket.pause(); // reads nothing until the whole body is written, as many HTTP clients do
      socket.write(framing === 'length' ? head(body.length) : head('chunked') + `${body.length.toString(16)}\r\n`);
      const writeError = await writeInPieces(socket, framing === 'length' ? body : Buffer.concat([body, Buffer.from('\r\n0\r\n\r\n')]));
      assert.equal(writeError, null, `${framing} try ${i}: the router cut the upload short`);
      socket.resume();
      socket.end();
      const r = await reply;
      assert.equal(r.status, 413, `${framing} try ${i}: ${r.error ?? r.text.slice(0, 80)}`);
      assert.equal(r.json.error.code, 'payload_too_large');
    }
  }
  assert.equal(upstreamCalls(lab), 0);
  await assertSettled(lab);
});

test('a declared length past the drain bound is answered and closed at once', { timeout: 15_000 }, async (t) => {
  const lab = await labFor(t, { edit: (d) => (d.server.max_body_bytes = 4 * MiB) });
  const { socket, reply } = rawConnection(lab);
  socket.write(head(1024 * MiB));
  const r = await reply;
  assert.equal(r.status, 413);
  assert.match(r.text, /\r\nconnection: close\r\n/i);
});
