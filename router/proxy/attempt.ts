// One attempt against one route: send the request, wait for response headers, and sort the
// outcome into what the walker needs. Nothing here writes to the client.
import type { Dispatcher } from 'undici';
import type { RouteRuntime } from '../upstream/route-state.ts';
import { adapterFor, isCudaError } from '../upstream/adapters.ts';
import { authHeader } from '../upstream/probe.ts';
import { readHead } from '../upstream/read-head.ts';
import type { Abortable } from './signals.ts';

export type FailureKind = 'refused' | 'reset' | 'timeout' | 'status_5xx' | 'redirect' | 'error_body';

export type AttemptOutcome =
  | { kind: 'response'; status: number; headers: Dispatcher.ResponseData['headers']; body: Dispatcher.ResponseData['body'] }
  /** A 4xx (not 429) already read in full: passed through unchanged. */
  | { kind: 'client_error'; status: number; headers: Dispatcher.ResponseData['headers']; bodyBytes: Buffer }
  | { kind: 'busy'; status: number; retryAfterS: number | undefined; detail: string }
  | { kind: 'failure'; failure: FailureKind; status?: number; detail: string; cuda: boolean }
  | { kind: 'aborted' };

export interface AttemptRequest {
  route: RouteRuntime;
  path: string;
  body: string;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  /** Client abort or the overall deadline. */
  signal: Abortable;
  /** Client abort alone: an abort from it is the client leaving, not a failure. */
  clientSignal: Abortable;
  requestId: string;
}

// An error page or a vLLM error body is small; no more than this is read, and for no longer
// than the attempt's wait for headers (the route's timeout_ms, or what is left of the
// deadline): an upstream sending an endless error body must not hold the request.
export const MAX_ERROR_BODY = 64 * 1024;

export async function attempt(a: AttemptRequest): Promise<AttemptOutcome> {
  const { route } = a;
  let res: Dispatcher.ResponseData;
  try {
    res = await route.pool.request({
      path: a.path,
      method: 'POST',
      headers: upstreamHeaders(route, a.requestId),
      body: a.body,
      signal: a.signal,
      headersTimeout: a.headersTimeoutMs,
      bodyTimeout: a.idleTimeoutMs,
    });
  } catch (err) {
    if (a.clientSignal.aborted) return { kind: 'aborted' };
    return failureFromError(err, a.signal, a.headersTimeoutMs);
  }

  const status = res.statusCode;
  if (status >= 200 && status < 300) return { kind: 'response', status, headers: res.headers, body: res.body };

  if (status >= 300 && status < 400) {
    // Never relayed (a client would follow it, re-posting the prompt to a host the policy
    // never names) and never followed: an outage of this route.
    res.body.on('error', ignore);
    res.body.destroy();
    const to = first(res.headers.location);
    return { kind: 'failure', failure: 'redirect', status, detail: `HTTP ${status} redirect${to ? ` to ${to.slice(0, 200)}` : ''}, not followed`, cuda: false };
  }

  const read = await readHead(res.body, MAX_ERROR_BODY, a.headersTimeoutMs);
  if (a.clientSignal.aborted) return { kind: 'aborted' };
  const bytes = read.bytes;
  const head = bytes.toString('utf8', 0, Math.min(bytes.length, 4096));
  const cut = read.complete ? '' : ` [${read.why}]`;
  switch (adapterFor(route.config.runtime).classify(status, head)) {
    case 'busy':
      return { kind: 'busy', status, retryAfterS: retryAfter(res.headers['retry-after']), detail: `HTTP ${status}: ${oneLine(head)}${cut}` };
    case 'failure':
      return { kind: 'failure', failure: 'status_5xx', status, detail: `HTTP ${status}: ${oneLine(head)}${cut}`, cuda: isCudaError(head) };
    case 'pass':
      // A 4xx is relayed whole or not at all.
      if (!read.complete) return { kind: 'failure', failure: 'error_body', status, detail: `HTTP ${status} with an unreadable body${cut}`, cuda: false };
      return { kind: 'client_error', status, headers: res.headers, bodyBytes: bytes };
  }
}

function ignore(): void {}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function upstreamHeaders(route: RouteRuntime, requestId: string): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId };
  if (route.config.api_key_env !== undefined) Object.assign(headers, authHeader(route.config));
  return headers;
}

function failureFromError(err: unknown, signal: Abortable, headersTimeoutMs: number): AttemptOutcome {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? e.name;
  let failure: FailureKind = 'reset';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EAI_AGAIN') failure = 'refused';
  else if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || signal.aborted) failure = 'timeout';
  const detail = failure === 'timeout' ? `no response within ${headersTimeoutMs} ms (${code})` : `${code}: ${e.message}`;
  return { kind: 'failure', failure, detail, cuda: isCudaError(e.message) };
}

function retryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return s;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 300);
}
