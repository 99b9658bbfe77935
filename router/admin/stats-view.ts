// What unauthenticated /stats shows of each upstream: the same fields as /admin/upstreams, but
// no GPU URL (null) and only the kind of the last error (an upstream's error body can echo a
// prompt, and a connect error names the GPU's address). The admin token gets the full view.
import { publicErrorSummary } from '../upstream/redact.ts';
import type { RouteRuntime } from '../upstream/route-state.ts';
import { tokenMatches } from './auth.ts';
import { upstreamView } from './routes.ts';

export function publicUpstreamView(r: RouteRuntime) {
  const view = upstreamView(r);
  return { ...view, url: null, last_error: publicErrorSummary(view.last_error) };
}

/** True when the request carries the admin token (`Authorization: Bearer …`). */
export function statsDetail(authorization: string | undefined, token: string | undefined): boolean {
  if (!token || authorization === undefined) return false;
  const m = /^Bearer\s+(.+)$/i.exec(authorization);
  return m !== null && tokenMatches(m[1]!.trim(), token);
}
