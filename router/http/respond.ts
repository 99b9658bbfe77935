// Writing JSON and errors (through proxy/answer-writer.ts, the one writer of the router's own
// answers). Every error the router itself produces goes out through sendError,
// in the envelope of the request's protocol (http/envelope.ts), with whatever decision headers
// exist at that point.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asRouterError } from '../errors.ts';
import { isLingering } from './body.ts';
import { uuidv7 } from '../request-id.ts';
import { envelopeFor, renderError, targetOf } from './envelope.ts';
import { writeJson } from '../proxy/answer-writer.ts';

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  writeJson(res, { status, own: headers }, JSON.stringify(value));
}

export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): number {
  const e = asRouterError(err);
  if (res.headersSent) {
    res.destroy();
    return e.status;
  }
  const extra: Record<string, string> = { ...headers };
  if (e.retryAfterS !== undefined) extra['retry-after'] = String(e.retryAfterS);
  // A spent monthly budget does not come back on retry: SDKs that honour this header stop.
  if (e.code === 'budget_exceeded') extra['x-should-retry'] = 'false';
  // A body we stopped reading (413 past the drain bound, 408) cannot be left on a keep-alive connection.
  if ((e.code === 'payload_too_large' && !isLingering(res.req)) || e.code === 'request_timeout') extra.connection = 'close';
  const rendered = renderError(envelopeFor(targetOf(res.req)), e);
  writeJson(res, { status: rendered.status, own: extra }, rendered.body);
  return rendered.status;
}

// Ids a client sends are echoed back and logged, so they are limited to a safe alphabet.
const SAFE_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'] ?? req.headers['x-correlation-id'];
  const id = Array.isArray(given) ? given[0] : given;
  return id !== undefined && SAFE_ID.test(id) ? id : uuidv7();
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}
