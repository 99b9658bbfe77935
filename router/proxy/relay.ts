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

// Chat names; Anthropic and Responses answers relayed natively (SPEC §13) say input/output.
const PROMPT_TOKENS = /"(?:prompt_tokens|input_tokens)"\s*:\s*(\d+)/;
const COMPLETION_TOKENS = /"(?:completion_tokens|output_tokens)"\s*:\s*(\d+)/;

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

/** Every usage report in a chunk, in order, over `prev` (one chunk may carry a whole stream). */
function usageInChunk(text: string, prev: Usage | null): Usage | null {
  let usage = prev;
  for (let at = text.indexOf('"usage"'); at !== -1; at = text.indexOf('"usage"', at + 7)) usage = mergeUsage(usage, usageIn(text.slice(at, at + 400)));
  return usage;
}

/** A later usage report over an earlier one; a count it leaves out (Anthropic's message_delta has no input count) is kept. */
function mergeUsage(prev: Usage | null, next: Usage | null): Usage | null {
  if (next === null || prev === null) return next ?? prev;
  return { prompt: next.prompt || prev.prompt, completion: next.completion || prev.completion };
}

export type BodyRead = { ok: true; bytes: Buffer } | { ok: false; detail: string };

/**
 * A whole body, or why it could not be read (the upstream died mid-body). Event-driven for
 * the same reason as relayEventStream (no promise per chunk); a body over `cap` is destroyed
 * at once, which frees its connection.
 */
export function readCappedOrFail(body: Dispatcher.ResponseData['body'], cap: number): Promise<BodyRead> {
  return new Promise((resolve) => new CappedRead(body, cap, resolve));
}

// One body read. The listeners are bound methods, not closures made per request (README
// "Performance": no named closures on the hot path).
class CappedRead {
  readonly #body: Dispatcher.ResponseData['body'];
  readonly #cap: number;
  readonly #resolve: (result: BodyRead) => void;
  readonly #parts: Buffer[] = [];
  #size = 0;
  #settled = false;
  readonly #onData = this.onData.bind(this);
  readonly #onEnd = this.onEnd.bind(this);
  readonly #onError = this.onError.bind(this);
  readonly #onClose = this.onClose.bind(this);

  constructor(body: Dispatcher.ResponseData['body'], cap: number, resolve: (result: BodyRead) => void) {
    this.#body = body;
    this.#cap = cap;
    this.#resolve = resolve;
    body.on('data', this.#onData);
    body.on('end', this.#onEnd);
    body.on('error', this.#onError);
    body.on('close', this.#onClose);
  }

  #finish(result: BodyRead): void {
    if (this.#settled) return;
    this.#settled = true;
    detach(this.#body, this.#onData, this.#onEnd, this.#onError, this.#onClose);
    this.#resolve(result);
  }

  onData(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.#cap) {
      this.#finish({ ok: false, detail: `response larger than ${this.#cap} bytes` });
      this.#body.destroy();
      return;
    }
    this.#parts.push(chunk);
  }

  onEnd(): void {
    this.#finish({ ok: true, bytes: this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size) });
  }

  onError(err: Error & { code?: string }): void {
    this.#finish({ ok: false, detail: `body cut off after ${this.#size} bytes (${err.code ?? err.name}: ${err.message})` });
  }

  /** 'close' right after 'end' or 'error' is normal (those settle first); alone, it is a premature close. */
  onClose(): void {
    setImmediate(() => this.onError(prematureClose()));
  }
}

/** What `for await` over a stream reports when it closes without 'end' or 'error'. */
function prematureClose(): Error & { code: string } {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

export function isEventStream(headers: Dispatcher.ResponseData['headers']): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.includes('text/event-stream');
}

/** How a relayed stream ended; `firstByteAt` is when its first chunk arrived (ms epoch). */
export type StreamEnd = { chunks: number; firstByteAt: number | null } & (
  | { ok: true; usage: Usage | null }
  | { ok: false; reason: 'client_gone' }
  | { ok: false; reason: 'upstream'; detail: string; usage: Usage | null; midEvent: boolean }
);

// An event is relayed only once its blank line has arrived, so an upstream dying in the middle
// of one leaves the client on an event boundary, where the router's `event: error` can follow
// and be seen. A stream that never ends an event (not really SSE) is passed on past this much.
const MAX_HELD_BYTES = 1024 * 1024;

/** Index just past the last complete SSE event in `b` (a blank line: \n\n or \r\n\r\n), or 0. */
export function eventBoundary(b: Buffer): number {
  const n = b.length;
  if (n >= 2 && b[n - 1] === 0x0a && (b[n - 2] === 0x0a || (n >= 4 && b[n - 2] === 0x0d && b[n - 3] === 0x0a && b[n - 4] === 0x0d))) return n;
  const lf = b.lastIndexOf('\n\n');
  const crlf = b.lastIndexOf('\r\n\r\n');
  return Math.max(lf === -1 ? 0 : lf + 2, crlf === -1 ? 0 : crlf + 4);
}

const DONE_MARK = 'data: [DONE]';

/**
 * Pipes an SSE body to the client, noting when the first chunk arrived. Waits for 'drain'
 * when the client reads slowly; a client that stalls longer than `stallMs` is treated as
 * gone, which aborts the upstream and frees the slot. `client` aborts when the client leaves.
 *
 * Driven by 'data' events rather than `for await`: the async iterator's promise and ticks per
 * chunk cost ~8 µs of CPU per relayed chunk on the bench machine (~7% of the router's whole
 * per-chunk cost). The outcomes are the same as the loop's: an end or error while waiting
 * for 'drain' is acted on once the drain wait ends, and a body closed without 'end' or
 * 'error' is a premature close.
 */
export function relayEventStream(
  body: Dispatcher.ResponseData['body'],
  res: ServerResponse,
  stallMs: number,
  client: { readonly aborted: boolean },
  /** Rewrites each chunk into the client's protocol (SPEC §13); absent, bytes pass as they are. */
  translate?: { push(chunk: Buffer): string },
  /** Chat streams end with `data: [DONE]`; Anthropic and Responses streams end without one. */
  requireDone = true,
  /** Sees the bytes as they go to the client (request_log.store_payloads). */
  tap?: (chunk: Buffer) => void,
): Promise<StreamEnd> {
  return new Promise((resolve) => {
    let chunks = 0;
    let firstByteAt: number | null = null;
    let usage: Usage | null = null;
    let tail = '';
    let settled = false;
    let waitingForDrain = false;
    let pendingError: (Error & { code?: string }) | null = null;
    let pendingEnd = false;
    /** The start of an event whose end has not arrived yet. */
    let held: Buffer | null = null;
    /** The bytes written so far end on an event boundary. */
    let atBoundary = true;

    const finish = (end: StreamEnd) => {
      if (settled) return;
      settled = true;
      detach(body, onData, onEnd, onError, onClose);
      resolve(end);
    };
    const clientGone = () => finish({ ok: false, reason: 'client_gone', chunks, firstByteAt });
    const failed = (err: Error & { code?: string }) => {
      if (client.aborted) return clientGone();
      finish({ ok: false, reason: 'upstream', detail: `${err.code ?? err.name}${held ? ` in the middle of an event (${held.length} bytes held back)` : ''}: ${err.message}`, chunks, firstByteAt, usage, midEvent: !atBoundary });
    };
    const onData = (data: Buffer) => {
      if (client.aborted) return clientGone();
      if (chunks === 0) firstByteAt = Date.now();
      chunks++;
      let chunk = held === null ? data : Buffer.concat([held, data]);
      held = null;
      const end = eventBoundary(chunk);
      if (end < chunk.length && chunk.length - end <= MAX_HELD_BYTES) {
        held = chunk.subarray(end);
        chunk = chunk.subarray(0, end);
        if (chunk.length === 0) return;
        atBoundary = true;
      } else atBoundary = end === chunk.length;
      // Usage and [DONE] come in the last events; only chunks that mention them are decoded.
      if (chunk.includes('"usage"')) usage = usageInChunk(chunk.toString('utf8'), usage);
      tail = (tail + chunk.toString('latin1', Math.max(0, chunk.length - 32))).slice(-48);
      if (translate) {
        let out: string;
        try {
          out = translate.push(chunk);
        } catch (err) {
          // A frame the translator cannot read ends the stream like an upstream fault would.
          body.pause();
          return failed(err as Error);
        }
        if (out !== '' && tap) tap(Buffer.from(out));
        if (out === '' || res.write(out)) return;
      } else {
        if (tap) tap(chunk);
        if (res.write(chunk)) return;
      }
      body.pause();
      waitingForDrain = true;
      void drained(res, stallMs).then((ok) => {
        waitingForDrain = false;
        if (!ok) return clientGone();
        if (pendingError) return failed(pendingError);
        if (pendingEnd) return ended();
        body.resume();
      });
    };
    const ended = () => {
      if (held !== null) {
        // The stream ended without a blank line after its last event: pass it on as it came.
        const last = held;
        held = null;
        atBoundary = false;
        tail = (tail + last.toString('latin1', Math.max(0, last.length - 32))).slice(-48);
        if (translate) {
          let out: string;
          try {
            out = translate.push(last);
          } catch (err) {
            return failed(err as Error);
          }
          if (out !== '') res.write(out);
        } else res.write(last);
      }
      if (!requireDone || tail.includes(DONE_MARK)) finish({ ok: true, usage, chunks, firstByteAt });
      else finish({ ok: false, reason: 'upstream', detail: 'stream ended without [DONE]', chunks, firstByteAt, usage, midEvent: !atBoundary });
    };
    const onEnd = () => {
      if (waitingForDrain) pendingEnd = true;
      else ended();
    };
    const onError = (err: Error & { code?: string }) => {
      if (waitingForDrain) pendingError ??= err;
      else failed(err);
    };
    // 'close' right after 'end' or 'error' is normal (those settle first); alone, it is what
    // `for await` reports as a premature close.
    const onClose = () => {
      if (!pendingEnd) setImmediate(() => onError(prematureClose()));
    };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
  });
}

function ignore(): void {}

/**
 * Stops listening to a body whose outcome is decided. The caller destroys it next; an error
 * it emits on the way is already accounted for, so it is swallowed rather than thrown.
 */
function detach(body: Dispatcher.ResponseData['body'], onData: (c: Buffer) => void, onEnd: () => void, onError: (e: Error) => void, onClose: () => void): void {
  body.off('data', onData);
  body.off('end', onEnd);
  body.off('error', onError);
  body.off('close', onClose);
  body.on('error', ignore);
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
