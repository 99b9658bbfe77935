// Commits a successful (or passed-through 4xx) upstream response to the client.
import type { RouteRuntime } from '../upstream/route-state.ts';
import { asStreamHead, writeJson, writeStreamHead } from './answer-writer.ts';
import type { AttemptOutcome } from './attempt.ts';
import type { AnswerTranslator, UpstreamCall } from './dialect.ts';
import type { ForwardRequest } from './forward-request.ts';
import { completionAsSse } from './synthetic.ts';
import { isEventStream, readCappedOrFail, relayEventStream, responseHeaders, sseErrorEvent, usageInBytes, type Usage } from './relay.ts';

export type Delivery = {
  kind: 'done';
  status: number;
  usage: Usage | null;
  /** ms from request start to the first byte written to the client. */
  ttfbMs: number | null;
  streamed: boolean;
  clientGone: boolean;
  /** The upstream failed after the first byte: the stream was ended with an error event. */
  upstreamError: string | null;
  /** Capture mode: the body, not yet sent to the client. */
  captured?: { status: number; headers: Record<string, string | string[]>; bytes: Buffer };
};

export type DeliverResult = Delivery | { kind: 'retryable'; detail: string };

// A non-stream completion is one JSON object; 64 MiB is far past any real one and keeps a
// misbehaving upstream from filling the router's memory.
const MAX_JSON_RESPONSE = 64 * 1024 * 1024;

export async function deliver(
  outcome: Extract<AttemptOutcome, { kind: 'response' | 'client_error' }>,
  ex: ForwardRequest,
  rt: RouteRuntime,
  own: Record<string, string>,
  call: UpstreamCall | null = null,
): Promise<DeliverResult> {
  const { res } = ex;
  if (ex.capture) return capture(outcome, ex);
  if (call?.answer) return deliverTranslated(outcome, ex, rt, own, call.answer);
  // Headers are built into one fresh object and extended in place: spreading it into another
  // literal cost ~1 µs per response (a slow V8 path for objects with many quoted keys).
  if (outcome.kind === 'client_error') {
    const headers = responseHeaders(outcome.headers, own);
    headers['content-length'] = String(outcome.bodyBytes.length);
    res.writeHead(outcome.status, headers);
    res.end(outcome.bodyBytes);
    ex.tap?.(outcome.bodyBytes);
    return done(outcome.status, null, Date.now() - ex.startedAt, false, ex);
  }

  if (!isEventStream(outcome.headers)) {
    const read = await readCappedOrFail(outcome.body, MAX_JSON_RESPONSE);
    if (!read.ok) return ex.clientSignal.aborted ? done(499, null, null, false, ex) : { kind: 'retryable', detail: read.detail };
    const headers = responseHeaders(outcome.headers, own);
    headers['content-length'] = String(read.bytes.length);
    res.writeHead(outcome.status, headers);
    res.end(read.bytes);
    ex.tap?.(read.bytes);
    return done(outcome.status, usageInBytes(read.bytes), Date.now() - ex.startedAt, false, ex);
  }

  res.writeHead(outcome.status, asStreamHead(responseHeaders(outcome.headers, own)));
  res.flushHeaders();
  const end = await relayEventStream(outcome.body, res, ex.policy.doc.server.stream_idle_timeout_ms, ex.clientSignal, undefined, call?.native === undefined, ex.tap);
  const ttfbMs = end.firstByteAt === null ? null : end.firstByteAt - ex.startedAt;
  if (end.ok) {
    res.end();
    return done(outcome.status, end.usage, ttfbMs, true, ex);
  }
  if (end.reason === 'client_gone') {
    outcome.body.destroy();
    res.destroy();
    const gone = done(499, null, ttfbMs, true, ex);
    gone.clientGone = true;
    return gone;
  }
  outcome.body.destroy();
  const detail = `${rt.name} failed after ${end.chunks} chunk(s): ${end.detail}`;
  const message = `Upstream ${rt.name} failed mid-stream; the answer is incomplete. Retry the request.`;
  // A blank line first when the last bytes relayed did not end an event: the error is then an
  // event of its own, not glued onto a half line the client's parser would discard.
  if (!res.destroyed) res.end((end.midEvent ? '\n\n' : '') + (call?.native ? call.native.failEvent(message) : sseErrorEvent(message)));
  const failed = done(outcome.status, end.usage, ttfbMs, true, ex);
  failed.upstreamError = detail;
  return failed;
}

/**
 * The same commitments as deliver(), with the answer translated to the client's protocol:
 * usage is read from the upstream's bytes, and a stream is parsed frame by frame.
 */
async function deliverTranslated(
  outcome: Extract<AttemptOutcome, { kind: 'response' | 'client_error' }>,
  ex: ForwardRequest,
  rt: RouteRuntime,
  own: Record<string, string>,
  answer: AnswerTranslator,
): Promise<DeliverResult> {
  const { res } = ex;
  if (outcome.kind === 'client_error') {
    const e = answer.clientError(outcome.status, outcome.bodyBytes);
    writeJson(res, { status: e.status, own }, e.body);
    return done(e.status, null, Date.now() - ex.startedAt, false, ex);
  }
  if (!isEventStream(outcome.headers)) {
    const read = await readCappedOrFail(outcome.body, MAX_JSON_RESPONSE);
    if (!read.ok) return ex.clientSignal.aborted ? done(499, null, null, false, ex) : { kind: 'retryable', detail: read.detail };
    const usage = usageInBytes(read.bytes);
    if (ex.stream) {
      // The client asked for a stream and the upstream answered whole: sent as that stream.
      const stream = answer.stream();
      writeStreamHead(res, { status: outcome.status, own }, stream.start() + stream.push(Buffer.from(completionAsSse(parseCompletion(read.bytes), { include_usage: true }))) + stream.end());
      return done(outcome.status, usage, Date.now() - ex.startedAt, true, ex);
    }
    writeJson(res, { status: outcome.status, own }, answer.json(read.bytes));
    return done(outcome.status, usage, Date.now() - ex.startedAt, false, ex);
  }
  const stream = answer.stream();
  writeStreamHead(res, { status: outcome.status, own });
  res.write(stream.start());
  const end = await relayEventStream(outcome.body, res, ex.policy.doc.server.stream_idle_timeout_ms, ex.clientSignal, stream, true, ex.tap);
  const ttfbMs = end.firstByteAt === null ? null : end.firstByteAt - ex.startedAt;
  if (end.ok) {
    res.end(stream.end());
    return done(outcome.status, end.usage, ttfbMs, true, ex);
  }
  outcome.body.destroy();
  if (end.reason === 'client_gone') {
    res.destroy();
    const gone = done(499, null, ttfbMs, true, ex);
    gone.clientGone = true;
    return gone;
  }
  if (!res.destroyed) res.end(stream.fail(`Upstream ${rt.name} failed mid-stream; the answer is incomplete. Retry the request.`));
  const failed = done(outcome.status, end.usage, ttfbMs, true, ex);
  failed.upstreamError = `${rt.name} failed after ${end.chunks} chunk(s): ${end.detail}`;
  return failed;
}

function parseCompletion(bytes: Buffer): Parameters<typeof completionAsSse>[0] {
  try {
    const v = JSON.parse(bytes.toString('utf8'));
    return typeof v === 'object' && v !== null ? v : {};
  } catch {
    return {};
  }
}

/** Fail-closed requests: read the answer in full and hand it back instead of sending it. */
async function capture(outcome: Extract<AttemptOutcome, { kind: 'response' | 'client_error' }>, ex: ForwardRequest): Promise<DeliverResult> {
  const headers = responseHeaders(outcome.headers, {});
  if (outcome.kind === 'client_error') return done(outcome.status, null, null, false, ex, { status: outcome.status, headers, bytes: outcome.bodyBytes });
  const read = await readCappedOrFail(outcome.body, MAX_JSON_RESPONSE);
  if (!read.ok) return ex.clientSignal.aborted ? done(499, null, null, false, ex) : { kind: 'retryable', detail: read.detail };
  return done(outcome.status, usageInBytes(read.bytes), null, false, ex, { status: outcome.status, headers, bytes: read.bytes });
}

function done(status: number, usage: Usage | null, ttfbMs: number | null, streamed: boolean, ex: ForwardRequest, captured?: Delivery['captured']): Delivery {
  const d: Delivery = { kind: 'done', status, usage, ttfbMs, streamed, clientGone: ex.clientSignal.aborted, upstreamError: null };
  if (captured) d.captured = captured;
  return d;
}
