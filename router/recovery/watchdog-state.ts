// The watchdog's memory between runs: `watchdog --once` is a fresh process each minute, so
// failure counts, backoff and "already paged" must live in a file. A missing or damaged file
// must never stop the watchdog: it starts fresh and says so.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export type RecoveryAction = 'restart' | 'cuda';

export interface LastResult {
  at: number;
  action: RecoveryAction;
  ok: boolean;
  exit_code: number | null;
  timed_out: boolean;
  trigger: string;
  error?: string;
}

export interface RouteState {
  consecutive_failures: number;
  last_failure: { at: number; error: string; status?: number } | null;
  cuda_suspected: boolean;
  /** Epoch ms of the last recovery attempt on this route (any outcome). */
  last_action_at: number | null;
  /** Epoch ms of recovery attempts within the last hour: the rolling hourly cap. */
  actions: number[];
  last_result: LastResult | null;
  /** The operator was told about the current outage; cleared when the route is healthy again. */
  paged: boolean;
  /** Epoch ms of the first "still loading its model" answer in the current run of them. */
  loading_since: number | null;
}

export interface WatchdogState {
  version: 1;
  updated_at: number | null;
  routes: Record<string, RouteState>;
}

export type StateLoad = { state: WatchdogState; status: 'loaded' } | { state: WatchdogState; status: 'missing' | 'corrupt'; detail: string };

export const HOUR_MS = 3_600_000;

/**
 * A route's entry, created when missing. Looked up as an own property only: a route may be
 * called `constructor`, `toString` or `__proto__`, and `routes[name] ??= ...` would find (or
 * set) Object.prototype's member instead.
 */
export function routeStateOf(routes: Record<string, RouteState>, name: string): RouteState {
  if (!Object.hasOwn(routes, name)) setRoute(routes, name, emptyRouteState());
  return routes[name]!;
}

function setRoute(routes: Record<string, RouteState>, name: string, value: RouteState): void {
  Object.defineProperty(routes, name, { value, enumerable: true, writable: true, configurable: true });
}

export function emptyState(): WatchdogState {
  return { version: 1, updated_at: null, routes: {} };
}

export function emptyRouteState(): RouteState {
  return { consecutive_failures: 0, last_failure: null, cuda_suspected: false, last_action_at: null, actions: [], last_result: null, paged: false, loading_since: null };
}

export function loadState(path: string): StateLoad {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { state: emptyState(), status: code === 'ENOENT' ? 'missing' : 'corrupt', detail: `cannot read ${path}: ${code ?? (err as Error).message}` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { state: emptyState(), status: 'corrupt', detail: `${path} is not JSON: ${(err as Error).message}` };
  }
  if (!isObject(doc) || doc.version !== 1 || !isObject(doc.routes)) {
    return { state: emptyState(), status: 'corrupt', detail: `${path} is not a version 1 watchdog state` };
  }
  const routes: Record<string, RouteState> = {};
  for (const [name, value] of Object.entries(doc.routes)) setRoute(routes, name, sanitizeRoute(value));
  return { state: { version: 1, updated_at: num(doc.updated_at), routes }, status: 'loaded' };
}

/** Write to a temp file, fsync, rename: a crash leaves the old state or the new, never half. */
export function saveState(path: string, state: WatchdogState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(state, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** mtime of the state file, or null when there is none: tells us another process wrote it. */
export function stateMtime(path: string): number | null {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

export function recentActions(actions: readonly number[], now: number): number[] {
  return actions.filter((t) => t > now - HOUR_MS && t <= now);
}

export interface Observation {
  ok: boolean;
  /** Answered busy: full, or still loading its model (see ProbeResult). */
  busy?: boolean;
  loading?: boolean;
  cuda: boolean;
  status?: number;
  error?: string;
  at: number;
}

/**
 * Fold one round's evidence into a route's state. `recovered` is true when a route that was
 * down long enough to act on (or page about) answers healthy again.
 *
 * A busy answer ends a run of failures (the server is up) without being a recovery. Full is
 * never an outage; a model still loading becomes one after `loadingGraceMs`, counted from the
 * first such answer or the last recovery action, whichever is later (a load that hangs).
 */
export function observe(
  s: RouteState,
  probe: Observation,
  ctx: { cudaNoted: boolean; cudaCheckFailed: boolean; threshold: number; now: number; loadingGraceMs: number },
): { recovered: boolean } {
  const wasDown = s.consecutive_failures >= ctx.threshold || s.paged || s.cuda_suspected;
  // A CUDA fault outlives the round that saw it only while the route stays unhealthy; a fault
  // seen on the request path that now probes fine is re-reported by the next failing request.
  const carried = s.cuda_suspected && !probe.ok;
  s.cuda_suspected = probe.cuda || ctx.cudaNoted || ctx.cudaCheckFailed || carried;
  s.actions = recentActions(s.actions, ctx.now);
  let error = probe.error ?? 'probe failed';
  s.loading_since = probe.busy && probe.loading ? (s.loading_since ?? probe.at) : null;
  if (probe.busy) {
    const loadingFor = s.loading_since === null ? 0 : probe.at - Math.max(s.loading_since, s.last_action_at ?? 0);
    if (s.loading_since === null || loadingFor < ctx.loadingGraceMs) {
      s.consecutive_failures = 0;
      return { recovered: false };
    }
    error = `still loading its model after ${Math.round(loadingFor / 1000)} s (${error})`;
  }
  if (!probe.ok) {
    s.consecutive_failures += 1;
    s.last_failure = { at: probe.at, error, ...(probe.status !== undefined ? { status: probe.status } : {}) };
    return { recovered: false };
  }
  s.consecutive_failures = 0;
  if (s.cuda_suspected) return { recovered: false };
  s.paged = false;
  return { recovered: wasDown };
}

// A hand-edited or older file may have odd fields: keep what is well-formed, default the rest.
function sanitizeRoute(value: unknown): RouteState {
  const s = emptyRouteState();
  if (!isObject(value)) return s;
  const failures = num(value.consecutive_failures);
  if (failures !== null && failures >= 0) s.consecutive_failures = Math.floor(failures);
  if (isObject(value.last_failure) && num(value.last_failure.at) !== null) {
    const status = num(value.last_failure.status);
    s.last_failure = { at: num(value.last_failure.at)!, error: String(value.last_failure.error ?? ''), ...(status !== null ? { status } : {}) };
  }
  s.cuda_suspected = value.cuda_suspected === true;
  s.last_action_at = num(value.last_action_at);
  s.actions = Array.isArray(value.actions) ? value.actions.filter((t): t is number => typeof t === 'number' && Number.isFinite(t)) : [];
  const r = value.last_result;
  if (isObject(r) && num(r.at) !== null && (r.action === 'restart' || r.action === 'cuda')) {
    s.last_result = {
      at: num(r.at)!,
      action: r.action,
      ok: r.ok === true,
      exit_code: num(r.exit_code),
      timed_out: r.timed_out === true,
      trigger: String(r.trigger ?? ''),
      ...(typeof r.error === 'string' ? { error: r.error } : {}),
    };
  }
  s.paged = value.paged === true;
  s.loading_since = num(value.loading_since);
  return s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
