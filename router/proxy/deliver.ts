// Commits a successful (or passed-through 4xx) upstream response to the client.
import type { RouteRuntime } from '../upstream/route-state.ts';
import type { AttemptOutcome } from './attempt.ts';
import type { Exchange } from './forward.ts';
import { isEventStream, readCappedOrFail, relayEventStream, responseHeaders, sseErrorEvent, usageIn, type Usage } from './relay.ts';

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
  ex: Exchange,
  rt: RouteRuntime,
  own: Record<string, string>,
): Promise<DeliverResult> {
  const { res } = ex;
  if (ex.capture) return capture(outcome, ex);
  if (outcome.kind === 'client_error') {
    res.writeHead(outcome.status, { ...responseHeaders(outcome.headers, own), 'content-length': String(outcome.bodyBytes.length) });
    res.end(outcome.bodyBytes);
    return done(outcome.status, null, Date.now() - ex.startedAt, false, ex);
  }

  if (!isEventStream(outcome.headers)) {
    const read = await readCappedOrFail(outcome.body, MAX_JSON_RESPONSE);
    if (!read.ok) return ex.clientSignal.aborted ? done(499, null, null, false, ex) : { kind: 'retryable', detail: read.detail };
    res.writeHead(outcome.status, { ...responseHeaders(outcome.headers, own), 'content-length': String(read.bytes.length) });
    res.end(read.bytes);
    const usage = read.bytes.length < 1_000_000 ? usageIn(read.bytes.toString('utf8')) : null;
    return done(outcome.status, usage, Date.now() - ex.startedAt, false, ex);
  }

  res.writeHead(outcome.status, {
    ...responseHeaders(outcome.headers, own),
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let ttfbMs: number | null = null;
  const end = await relayEventStream(outcome.body, res, {
    stallMs: ex.policy.policy.server.stream_idle_timeout_ms,
    onFirstByte: () => {
      ttfbMs = Date.now() - ex.startedAt;
    },
    clientGone: () => ex.clientSignal.aborted,
  });
  if (end.ok) {
    res.end();
    return { ...done(outcome.status, end.usage, ttfbMs, true, ex), ttfbMs };
  }
  if (end.reason === 'client_gone') {
    outcome.body.destroy();
    res.destroy();
    return { ...done(499, null, ttfbMs, true, ex), clientGone: true };
  }
  outcome.body.destroy();
  const detail = `${rt.name} failed after ${end.chunks} chunk(s): ${end.detail}`;
  if (!res.destroyed) res.end(sseErrorEvent(`Upstream ${rt.name} failed mid-stream; the answer is incomplete. Retry the request.`));
  return { ...done(outcome.status, end.usage, ttfbMs, true, ex), upstreamError: detail };
}

/** Fail-closed requests: read the answer in full and hand it back instead of sending it. */
async function capture(outcome: Extract<AttemptOutcome, { kind: 'response' | 'client_error' }>, ex: Exchange): Promise<DeliverResult> {
  const headers = responseHeaders(outcome.headers, {});
  if (outcome.kind === 'client_error') return { ...done(outcome.status, null, null, false, ex), captured: { status: outcome.status, headers, bytes: outcome.bodyBytes } };
  const read = await readCappedOrFail(outcome.body, MAX_JSON_RESPONSE);
  if (!read.ok) return ex.clientSignal.aborted ? done(499, null, null, false, ex) : { kind: 'retryable', detail: read.detail };
  const usage = usageIn(read.bytes.toString('utf8'));
  return { ...done(outcome.status, usage, null, false, ex), captured: { status: outcome.status, headers, bytes: read.bytes } };
}

function done(status: number, usage: Usage | null, ttfbMs: number | null, streamed: boolean, ex: Exchange): Delivery {
  return { kind: 'done', status, usage, ttfbMs, streamed, clientGone: ex.clientSignal.aborted, upstreamError: null };
}
