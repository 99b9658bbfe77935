// Connection-level limits of the listener (SPEC §6 `server.*`): how long a client may take to
// send its headers, a backstop for bodies no handler reads, how many connections it may hold,
// and what a client that breaks HTTP gets back (its protocol's error envelope, not Node's bare text).
// Response streams are not limited here: Node's request timeout stops at the end of the request.
import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors.ts';
import type { Policy } from '../policy/types.ts';
import { LINGER_MAX_MS } from './body.ts';
import { envelopeFor, errorBodyFor, targetOf, targetOfRawPacket } from './envelope.ts';

type ServerLimits = Policy['server'];

/** How often node:http looks for expired headers and requests: a fraction of the shortest deadline. */
export function checkingIntervalMs(s: ServerLimits): number {
  return Math.max(100, Math.min(30_000, Math.floor(Math.min(s.headers_timeout_ms, s.body_timeout_ms) / 4)));
}

/** Told when a connection is refused for max_connections, at most once per DROP_NOTICE_MS. */
export type DropNotice = (maxConnections: number, dropped: number) => void;
const DROP_NOTICE_MS = 60_000;

export function applyConnectionLimits(server: Server, s: ServerLimits, onDrop?: DropNotice): void {
  server.headersTimeout = s.headers_timeout_ms;
  // The body deadline proper is http/body.ts's (it answers with the request id); this one
  // catches bodies no handler reads (the admin API's) and drains that overrun their bound.
  server.requestTimeout = s.headers_timeout_ms + s.body_timeout_ms + LINGER_MAX_MS;
  server.keepAliveTimeout = 65_000;
  server.maxConnections = s.max_connections;
  server.on('clientError', answerClientError);
  if (onDrop) {
    let dropped = 0;
    let noticedAt = -Infinity;
    // 'drop' is emitted by node:http when maxConnections turns a connection away.
    server.on('drop', () => {
      dropped++;
      const now = Date.now();
      if (now - noticedAt < DROP_NOTICE_MS) return;
      noticedAt = now;
      onDrop(s.max_connections, dropped);
      dropped = 0;
    });
  }
}

/** A request that never became one (timeout, malformed HTTP): the error in the envelope, then close. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [code, status, message] = clientErrorAnswer(err);
  const target = inFlight?.req ? targetOf(inFlight.req) : targetOfRawPacket((err as { rawPacket?: unknown }).rawPacket);
  const body = errorBodyFor(envelopeFor(target), code, status, message);
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  socket.destroySoon?.();
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' };

export function clientErrorAnswer(err: NodeJS.ErrnoException): [ErrorCode, number, string] {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['request_timeout', ERROR_CATALOGUE.request_timeout.status, 'The request did not arrive in time (server.headers_timeout_ms for its headers, server.body_timeout_ms for its body). The connection is closed.'];
    case 'HPE_HEADER_OVERFLOW':
      return ['invalid_request', 431, 'The request headers are too large.'];
    default:
      return ['invalid_request', 400, `The request is not valid HTTP/1.1 (${err.code ?? 'parse error'}).`];
  }
}
