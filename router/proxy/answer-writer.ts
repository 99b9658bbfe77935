// Every answer the router writes itself goes out through these: a whole JSON body, or an event
// stream's head (then its events). The relayed upstream answer (deliver.ts, the zero-copy path)
// keeps the upstream's headers and adds the same stream headers. One place, so the heads of
// the chat, fail-closed, synthetic and translated answers cannot drift apart.
import type { ServerResponse } from 'node:http';

/** What an event stream's head always carries: no caching, no buffering by a proxy in front (nginx). */
export const STREAM_HEADERS = { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } as const;
const STREAM_CONTENT_TYPE = 'text/event-stream; charset=utf-8';

/** The answer a writer is asked to commit: status, the router's own headers. */
export interface AnswerHead {
  status: number;
  own: Record<string, string>;
}

/** A whole JSON answer. */
export function writeJson(res: ServerResponse, head: AnswerHead, body: string | Buffer, contentType = 'application/json'): void {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  res.writeHead(head.status, { 'content-type': contentType, 'content-length': String(length), ...head.own });
  res.end(body);
}

/** An event stream's head; with `whole`, the stream's every event at once, and its end. */
export function writeStreamHead(res: ServerResponse, head: AnswerHead, whole?: string): void {
  res.writeHead(head.status, { 'content-type': STREAM_CONTENT_TYPE, ...STREAM_HEADERS, ...head.own });
  if (whole !== undefined) res.end(whole);
}

/** Adds the stream headers to a relayed upstream head (built fresh by the caller, extended in place). */
export function asStreamHead(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  headers['cache-control'] = STREAM_HEADERS['cache-control'];
  headers['x-accel-buffering'] = STREAM_HEADERS['x-accel-buffering'];
  return headers;
}
