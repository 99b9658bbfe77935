// One active health probe of a route: used by the health checker and the watchdog alike.
import { request } from 'undici';
import type { RouteConfig } from '../policy/types.ts';
import { adapterFor, isCudaError, isLoadingAnswer } from './adapters.ts';
import { readHead } from './read-head.ts';

export interface ProbeResult {
  ok: boolean;
  /**
   * Not ok, but the upstream answered that it is busy (429, or its runtime's busy answer such as
   * llama.cpp's 503 "Loading model"): not ready, and not broken either.
   */
  busy: boolean;
  /** Of a busy answer: still loading its model. */
  loading: boolean;
  /** HTTP status, when the upstream answered at all. */
  status?: number;
  /** The answer (or error) names a CUDA fault: the GPU needs recovery, not just a restart. */
  cuda: boolean;
  error?: string;
  latencyMs: number;
  at: number;
}

// A health answer is small; past this the body is not read (an endless one would otherwise
// fill the router's memory until the probe's timeout).
export const PROBE_BODY_BYTES = 4096;

export async function probeRoute(route: RouteConfig, timeoutMs: number): Promise<ProbeResult> {
  const started = Date.now();
  const adapter = adapterFor(route.runtime);
  const url = adapter.healthUrl(route);
  try {
    const res = await request(url, {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      headers: authHeader(route),
    });
    const head = await readHead(res.body, PROBE_BODY_BYTES, Math.max(1, timeoutMs - (Date.now() - started)));
    const text = head.bytes.toString('utf8');
    // A redirect is not this upstream answering: it is never followed.
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const busy = !ok && adapter.classify(res.statusCode, text) === 'busy';
    return {
      ok,
      busy,
      loading: busy && isLoadingAnswer(text),
      status: res.statusCode,
      cuda: !ok && isCudaError(text),
      ...(ok ? {} : { error: `${url}: HTTP ${res.statusCode}${redirectNote(res.headers.location)}: ${text.slice(0, 200)}` }),
      latencyMs: Date.now() - started,
      at: started,
    };
  } catch (err) {
    const e = err as Error & { code?: string };
    const msg = `${url}: ` + (e.name === 'TimeoutError' || e.name === 'AbortError' ? `timeout after ${timeoutMs} ms` : `${e.code ?? e.name}: ${e.message}`);
    return { ok: false, busy: false, loading: false, cuda: isCudaError(e.message), error: msg, latencyMs: Date.now() - started, at: started };
  }
}

export function authHeader(route: RouteConfig): Record<string, string> {
  const key = route.api_key_env ? process.env[route.api_key_env] : undefined;
  return key ? { authorization: `Bearer ${key}` } : {};
}

function redirectNote(location: string | string[] | undefined): string {
  const to = Array.isArray(location) ? location[0] : location;
  return to ? ` (redirect to ${to.slice(0, 200)}, not followed)` : '';
}
