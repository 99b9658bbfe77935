// After an attempt succeeded: write the response to the client. Non-stream bodies are read in
// full first (they are one JSON object), so an upstream dying mid-body can still fail over.
// SSE is written chunk by chunk as it arrives, with backpressure; after its first byte there
// is no failover, and a failure ends the stream with an `event: error`, never `[DONE]`.
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { envelope } from '../errors.ts';

export interface Usage {
  prompt: number;
  completion: number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'content-length', 'date']);

/** Upstream headers minus hop-by-hop ones, plus the router's own. */
export function responseHeaders(upstream: Dispatcher.ResponseData['headers'], own: Record<string, string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in upstream) {
    const v = upstream[k];
    if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  }
  return Object.assign(out, own);
}

const PROMPT_TOKENS = /"prompt_tokens"\s*:\s*(\d+)/;
const COMPLETION_TOKENS = /"completion_tokens"\s*:\s*(\d+)/;

/** Usage from a JSON body or an SSE chunk, without parsing the whole thing. */
export function usageIn(text: string): Usage | null {
  const at = text.lastIndexOf('"usage"');
  if (at === -1) return null;
  const tail = text.slice(at, at + 400);
  const p = PROMPT_TOKENS.exec(tail);
  const c = COMPLETION_TOKENS.exec(tail);
  if (!p && !c) return null;
  return { prompt: p ? Number(p[1]) : 0, completion: c ? Number(c[1]) : 0 };
}

/** Usage from a whole JSON body: only the bytes from its last `"usage"` on are decoded. */
export function usageInBytes(bytes: Buffer): Usage | null {
  const at = bytes.lastIndexOf('"usage"');
  return at === -1 ? null : usageIn(bytes.toString('utf8', at, at + 400));
}

/** A whole body, or why it could not be read (the upstream died mid-body). */
export async function readCappedOrFail(body: AsyncIterable<Buffer>, cap: number): Promise<{ ok: true; bytes: Buffer } | { ok: false; detail: string }> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > cap) return { ok: false, detail: `response larger than ${cap} bytes` };
      parts.push(chunk);
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, detail: `body cut off after ${size} bytes (${e.code ?? e.name}: ${e.message})` };
  }
  return { ok: true, bytes: Buffer.concat(parts) };
}

export function isEventStream(headers: Dispatcher.ResponseData['headers']): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.includes('text/event-stream');
}

/** How a relayed stream ended; `firstByteAt` is when its first chunk arrived (ms epoch). */
export type StreamEnd = { chunks: number; firstByteAt: number | null } & (
  | { ok: true; usage: Usage | null }
  | { ok: false; reason: 'client_gone' }
  | { ok: false; reason: 'upstream'; detail: string; usage: Usage | null }
);

const DONE_MARK = 'data: [DONE]';

/**
 * Pipes an SSE body to the client, noting when the first chunk arrived. Waits for 'drain'
 * when the client reads slowly; a client that stalls longer than `stallMs` is treated as
 * gone, which aborts the upstream and frees the slot. `client` aborts when the client leaves.
 */
export async function relayEventStream(body: Dispatcher.ResponseData['body'], res: ServerResponse, stallMs: number, client: { readonly aborted: boolean }): Promise<StreamEnd> {
  let chunks = 0;
  let firstByteAt: number | null = null;
  let usage: Usage | null = null;
  let tail = '';
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (client.aborted) return { ok: false, reason: 'client_gone', chunks, firstByteAt };
      if (chunks === 0) firstByteAt = Date.now();
      chunks++;
      // Usage and [DONE] come in the last events; only chunks that mention them are decoded.
      if (chunk.includes('"usage"')) usage = usageIn(chunk.toString('utf8')) ?? usage;
      tail = (tail + chunk.toString('latin1', Math.max(0, chunk.length - 32))).slice(-48);
      if (!res.write(chunk) && !(await drained(res, stallMs))) return { ok: false, reason: 'client_gone', chunks, firstByteAt };
    }
  } catch (err) {
    if (client.aborted) return { ok: false, reason: 'client_gone', chunks, firstByteAt };
    const e = err as Error & { code?: string };
    return { ok: false, reason: 'upstream', detail: `${e.code ?? e.name}: ${e.message}`, chunks, firstByteAt, usage };
  }
  if (!tail.includes(DONE_MARK)) return { ok: false, reason: 'upstream', detail: 'stream ended without [DONE]', chunks, firstByteAt, usage };
  return { ok: true, usage, chunks, firstByteAt };
}

/** The terminal SSE error event of SPEC §5 step 9. */
export function sseErrorEvent(message: string): string {
  return `event: error\ndata: ${JSON.stringify(envelope('upstream_error', message))}\n\n`;
}

function drained(res: ServerResponse, stallMs: number): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), stallMs);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}
