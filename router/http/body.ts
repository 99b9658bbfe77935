// Reads a request body within the policy's limit and parses it as JSON. Every failure is a
// RouterError (413 / 408 / 400) raised before any routing work or upstream call.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { RouterError } from '../errors.ts';

/** Default for callers that pass no deadline (server.body_timeout_ms's default). */
const DEFAULT_BODY_TIMEOUT_MS = 60_000;

export function readBody(req: IncomingMessage, maxBytes: number, timeoutMs = DEFAULT_BODY_TIMEOUT_MS): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    // Answer now, but read (and drop) what the client is still sending, so the answer is not
    // lost to a reset when the connection closes with unread bytes (see linger below).
    if (declared <= LINGER_MAX_BYTES) linger(req);
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => new BodyRead(req, maxBytes, timeoutMs, resolve, reject));
}

// One body read: the listeners are bound methods, not closures made per request (README
// "Performance": no named closures on the hot path).
class BodyRead {
  readonly #req: IncomingMessage;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #resolve: (body: Buffer) => void;
  readonly #reject: (err: RouterError) => void;
  readonly #parts: Buffer[] = [];
  #size = 0;
  readonly #onData = this.onData.bind(this);
  readonly #onEnd = this.onEnd.bind(this);
  readonly #onError = this.onError.bind(this);
  readonly #onClose = this.onClose.bind(this);
  /** Date.now() past which the body is late (see the sweep below). */
  readonly deadline: number;

  constructor(req: IncomingMessage, maxBytes: number, timeoutMs: number, resolve: (body: Buffer) => void, reject: (err: RouterError) => void) {
    this.#req = req;
    this.#maxBytes = maxBytes;
    this.#timeoutMs = timeoutMs;
    this.#resolve = resolve;
    this.#reject = reject;
    req.on('data', this.#onData);
    req.on('end', this.#onEnd);
    req.on('error', this.#onError);
    req.on('close', this.#onClose);
    // A body that trickles or stops must not hold the connection (and a descriptor) forever.
    this.deadline = Date.now() + timeoutMs;
    watchDeadline(this);
  }

  #cleanup(): void {
    pendingReads.delete(this);
    this.#req.off('data', this.#onData);
    this.#req.off('end', this.#onEnd);
    this.#req.off('error', this.#onError);
    this.#req.off('close', this.#onClose);
  }

  onData(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.#maxBytes) {
      this.#cleanup();
      // The rest is never buffered: it is read and dropped within bounds, or the connection closes.
      linger(this.#req);
      this.#reject(tooLarge(this.#maxBytes));
      return;
    }
    this.#parts.push(chunk);
  }

  onEnd(): void {
    this.#cleanup();
    this.#resolve(this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size));
  }

  onError(err: Error): void {
    this.#cleanup();
    this.#reject(new RouterError('invalid_request', `could not read the request body: ${err.message}`));
  }

  onClose(): void {
    if (this.#req.readableEnded) return;
    this.#cleanup();
    this.#reject(new RouterError('invalid_request', 'the client closed the connection before the body was complete'));
  }

  onTimeout(): void {
    this.#cleanup();
    this.#req.pause();
    this.#reject(new RouterError('request_timeout', `The request body did not arrive within server.body_timeout_ms (${this.#timeoutMs} ms; ${this.#size} bytes came). The connection is closed.`));
  }
}

// Body deadlines are checked by one sweep every SWEEP_MS over the reads in progress rather than
// a timer per request (on a 2-core machine a setTimeout/clearTimeout pair took ~0.75 µs, a Set
// add/delete with a Date.now() ~0.3 µs). A late body is answered at most SWEEP_MS after its
// deadline. The sweep stops when no body is being read.
const SWEEP_MS = 100;
const pendingReads = new Set<BodyRead>();
let sweeper: NodeJS.Timeout | undefined;

function watchDeadline(read: BodyRead): void {
  pendingReads.add(read);
  if (sweeper === undefined) {
    sweeper = setInterval(sweepDeadlines, SWEEP_MS);
    sweeper.unref();
  }
}

function sweepDeadlines(): void {
  if (pendingReads.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
    return;
  }
  const now = Date.now();
  for (const read of pendingReads) if (read.deadline <= now) read.onTimeout();
}

// After a 413, the rest of the body is read and dropped, as nginx's lingering close does, so
// the client (which may be still writing, e.g. fetch) reads the 413 instead of a reset. Bounded:
// past LINGER_MAX_BYTES more bytes or LINGER_MAX_MS the connection is cut.
export const LINGER_MAX_BYTES = 64 * 1024 * 1024;
export const LINGER_MAX_MS = 10_000;

const lingering = new WeakSet<IncomingMessage>();

/** True while the body of `req` is being drained: its 413 may keep the connection open. */
export function isLingering(req: IncomingMessage | undefined): boolean {
  return req !== undefined && lingering.has(req);
}

function linger(req: IncomingMessage): void {
  if (lingering.has(req)) return;
  lingering.add(req);
  const socket: Socket = req.socket;
  let seen = 0;
  const cut = (): void => {
    finish();
    socket.destroy();
  };
  const timer = setTimeout(cut, LINGER_MAX_MS);
  // Counted on the socket: node:http may take the request's own 'data' listeners away when the
  // response ends (it then drops the body itself).
  const onSocketData = (chunk: Buffer): void => {
    seen += chunk.length;
    if (seen > LINGER_MAX_BYTES) cut();
  };
  const finish = (): void => {
    clearTimeout(timer);
    socket.off('data', onSocketData);
    req.off('end', finish);
    req.off('close', finish);
  };
  socket.on('data', onSocketData);
  req.once('end', finish);
  req.once('close', finish);
  req.resume();
}

function tooLarge(maxBytes: number): RouterError {
  return new RouterError('payload_too_large', `The request body is larger than server.max_body_bytes (${maxBytes} bytes).`);
}

/** The parsed body and its text (forwarded as the client wrote it: see proxy/upstream-body.ts). */
export function decodeJson(buf: Buffer): { value: unknown; text: string } {
  if (buf.length === 0) throw new RouterError('invalid_request', 'The request body is empty; send a JSON object.');
  if (!isUtf8(buf)) throw new RouterError('invalid_request', 'The request body is not valid UTF-8.');
  if (buf.length > NESTING_CHECK_FROM_BYTES) assertNestingWithin(buf, MAX_JSON_NESTING);
  const text = buf.toString('utf8');
  try {
    return { value: JSON.parse(text), text };
  } catch (err) {
    throw new RouterError('invalid_request', `The request body is not valid JSON: ${(err as Error).message}`);
  }
}

// JSON.parse is recursive and runs on the event loop: a 0.7 MB body nested 20,000 deep takes
// 20-35 ms to parse, during which no other client is answered. Large bodies are first walked
// once for their nesting (about 1 ms per MB, and a deep one is refused after its first few KB);
// a small body cannot nest deep enough to matter.
export const MAX_JSON_NESTING = 512;
const NESTING_CHECK_FROM_BYTES = 64 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** Throws a 400 when `buf` (JSON text) nests objects and arrays deeper than `max` levels. */
export function assertNestingWithin(buf: Uint8Array, max: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) {
        throw new RouterError('invalid_request', `The request body nests objects and arrays deeper than ${max} levels (past byte ${i}); no request the router serves needs that.`);
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
}
