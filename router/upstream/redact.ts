// Upstream error text kept out of places that may not hold it. An upstream's error body can
// echo the prompt (vLLM and llama.cpp quote the offending input), and a connect error names the
// GPU's address. Pure functions over the one-line details router/proxy/attempt.ts and
// router/upstream/probe.ts write ("route: HTTP 500: <body start>", "connect ECONNREFUSED a:p").
import { cudaErrorWords } from './adapters.ts';

const HTTP_STATUS = /\bHTTP (\d{3})\b/;
/** An error code as Node and undici name them: ECONNREFUSED, UND_ERR_SOCKET, ERR_INVALID_URL. */
const CODE = 'E[A-Z]{3,}|UND_ERR_[A-Z_]+|ERR_[A-Z_]+';
const ERROR_CODE = new RegExp(`\\b(${CODE})\\b`);

/**
 * The detail without the upstream's body text, for logs written with `logging.prompts: false`.
 * Words naming a CUDA fault are kept: they are the GPU's, not the client's.
 */
export function withoutBodyText(detail: string): string {
  const m = /\bHTTP \d{3}: /.exec(detail);
  if (!m) return detail;
  const cuda = cudaErrorWords(detail.slice(m.index + m[0].length));
  // The router's own note on a body it stopped reading (router/proxy/attempt.ts) is kept.
  const note = ROUTER_NOTE.exec(detail)?.[0] ?? '';
  return `${detail.slice(0, m.index + m[0].length - 2)}${cuda ? `: ${cuda}` : ''} (body not logged: logging.prompts is false)${note}`;
}

const ROUTER_NOTE = / \[body [^[\]]*\]$/;

/**
 * A failure as a client reads it in a 503 (router/proxy/forward.ts): the route, the HTTP status
 * or error code and the router's own words, but not the upstream's body text, the GPU's address
 * or a redirect's target. The operator reads the rest in upstream-failures.jsonl and the request log.
 */
export function clientErrorDetail(detail: string): string {
  return detail.replace(REDIRECT_TARGET, ' redirect, not followed').replace(AFTER_STATUS_OR_CODE, (_, head: string, rest: string) => {
    const cuda = HTTP_STATUS.test(head) ? cudaErrorWords(rest) : null;
    return cuda ? `${head} (${cuda})` : head;
  });
}

const REDIRECT_TARGET = / redirect to .*, not followed$/s;
/** "HTTP 500: <body>" or "ECONNREFUSED: connect ECONNREFUSED 10.0.0.5:8000": what follows the colon goes. */
const AFTER_STATUS_OR_CODE = new RegExp(`\\b(HTTP \\d{3}|${CODE}): (.*)$`, 's');

/** The HTTP status ("HTTP 503") or error code ("ECONNREFUSED") a detail names, or null. */
function statusOrCode(detail: string): string | null {
  const status = HTTP_STATUS.exec(detail);
  if (status) return `HTTP ${status[1]}`;
  return ERROR_CODE.exec(detail)?.[1] ?? null;
}

/** What an unauthenticated viewer may know of an error: its HTTP status or error code, nothing else. */
export function publicErrorSummary(detail: string | null): string | null {
  if (detail === null) return null;
  return `${statusOrCode(detail) ?? 'failed'} (details with the admin token)`;
}

/**
 * The kind of an error and nothing of its text: "HTTP 503", "timeout" (the router gave up
 * waiting), an error code such as "ECONNREFUSED", else "failed".
 */
export function errorKind(detail: string): string {
  if (HTTP_STATUS.test(detail)) return statusOrCode(detail)!;
  if (/\btimeout after\b|\bTimeoutError\b|\bUND_ERR_(HEADERS|BODY|CONNECT)_TIMEOUT\b/.test(detail)) return 'timeout';
  return statusOrCode(detail) ?? 'failed';
}
