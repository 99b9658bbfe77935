// Which error envelope a request's path gets (SPEC §13: "errors use that protocol's envelope"),
// decided in this one place for every writer of errors: the edge refusals, the dispatcher's 405,
// the key gate, the handlers and the unhandled-error net all go through respond.ts sendError.
// Anthropic's `{"type":"error","error":{type,message}}` for /v1/messages and everything under it;
// the OpenAI `{"error":{message,type,code,param}}` for every other path, /v1/responses and
// /v1/completions included.
import type { IncomingMessage } from 'node:http';
import { envelope, type ErrorCode, type RouterError } from '../errors.ts';
import { anthropicErrorBody } from '../protocol/anthropic-answer.ts';
import { anthropicRouterError, anthropicType, type Rendered } from '../protocol/errors.ts';

export type ErrorEnvelope = 'anthropic' | 'openai';

const ANTHROPIC_PREFIX = '/v1/messages';

/** The envelope for a request target (path, with or without a query). */
export function envelopeFor(target: string): ErrorEnvelope {
  if (!target.startsWith(ANTHROPIC_PREFIX)) return 'openai';
  const next = target.charCodeAt(ANTHROPIC_PREFIX.length);
  // '/v1/messages', '/v1/messages/…', '/v1/messages?…'; not '/v1/messagesX'.
  return Number.isNaN(next) || next === 47 /* '/' */ || next === 63 /* '?' */ ? 'anthropic' : 'openai';
}

/** The target a request was sent to (Express rewrites `url` inside mounted routers; `originalUrl` keeps it). */
export function targetOf(req: IncomingMessage | undefined): string {
  if (!req) return '/';
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
}

/** A router error rendered in the given envelope. */
export function renderError(envelope: ErrorEnvelope, e: RouterError): Rendered {
  if (envelope === 'anthropic') return anthropicRouterError(e);
  return { status: e.status, body: JSON.stringify(e.toBody()) };
}

/** The body for an answer written straight to a socket, whose status need not be the code's own (431). */
export function errorBodyFor(env: ErrorEnvelope, code: ErrorCode, status: number, message: string): string {
  return JSON.stringify(env === 'anthropic' ? anthropicErrorBody(anthropicType(status, code), message) : envelope(code, message));
}

/** The target of a request that broke HTTP, from the request line Node kept (`rawPacket`), or '/'. */
export function targetOfRawPacket(raw: unknown): string {
  if (!Buffer.isBuffer(raw)) return '/';
  const m = /^[A-Z]{3,10} (\S{1,2048}) HTTP\//.exec(raw.toString('latin1', 0, Math.min(raw.length, 2100)));
  return m ? m[1]! : '/';
}
