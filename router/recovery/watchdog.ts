// The watchdog: probe every route, remember failures across runs, and run the route's
// recovery command on its host when the plan (watchdog-plan.ts) says so. The same object
// serves `watchdog --once`, the in-process timer and POST /admin/recover-cuda, so the
// per-host lock and the backoff state are shared by all three.
import type { Logger } from 'pino';
import { RouterError } from '../errors.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { ProbeResult } from '../upstream/probe.ts';
import type { runRemote } from './ssh-exec.ts';
import { WatchdogLock } from './watchdog-lock.ts';
import { planAction, type PlannedAction } from './watchdog-plan.ts';
import { loadState, routeStateOf, observe, recentActions, saveState, stateMtime, type RecoveryAction, type WatchdogState } from './watchdog-state.ts';

export { planAction, type Plan, type PlannedAction } from './watchdog-plan.ts';

export type ActionResult = 'ok' | 'failed' | 'skipped';

export interface WatchdogDeps {
  policy: () => CompiledPolicy;
  probe: (route: string) => Promise<ProbeResult>;
  exec: typeof runRemote;
  /** The recovery-events.jsonl logger. */
  log: Logger;
  statePath: string;
  now?: () => number;
  onAction?: (route: string, action: 'restart' | 'cuda' | 'page', result: ActionResult) => void;
  /** A recovery command is about to run on `route` (the router takes it out of service). */
  onRecoveryStart?: (route: string, action: RecoveryAction, host: string) => void;
  /** Why this process must not act this round (another replica is the watchdog), or null. */
  blocked?: () => string | null;
}

export interface RouteReport {
  route: string;
  host: string | null;
  managed: boolean;
  probe: { ok: boolean; busy: boolean; loading: boolean; status?: number; cuda: boolean; error?: string };
  consecutive_failures: number;
  cuda_suspected: boolean;
  /** The action run, paged, or held back by backoff (then result is 'skipped'). */
  action: PlannedAction;
  why: string;
  result: ActionResult | 'none';
  exit_code?: number | null;
  timed_out?: boolean;
  error?: string;
}

export interface WatchdogReport {
  at: number;
  /** How the state file was found: 'missing' or 'corrupt' means this round started fresh. */
  state: 'loaded' | 'missing' | 'corrupt' | 'memory';
  routes: RouteReport[];
  /** True when any recovery command failed, timed out or could not be run. */
  failed: boolean;
  /** Set when this round did nothing because another watchdog process is acting. */
  skipped?: string;
}

export interface RecoveryOutcome {
  route: string;
  host: string;
  exit_code: number | null;
  timed_out: boolean;
  stdout_tail: string;
  stderr_tail: string;
  duration_ms: number;
  ok: boolean;
  signal?: string;
  error?: string;
}

const TAIL_CHARS = 2048;

interface ActionContext {
  trigger: string;
  /** What made the watchdog act: probe_failures, cuda_probe, cuda_request, cuda_check, admin... */
  cause: string;
  why: string;
}

export class Watchdog {
  #state: WatchdogState | undefined;
  #stateFileMtime: number | null = null;
  readonly #cudaNoted = new Set<string>();
  readonly #busyHosts = new Set<string>();
  #round: Promise<WatchdogReport> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = true;
  readonly #now: () => number;
  readonly #lock: WatchdogLock;
  /** The last reason a round was skipped for (logged once per change). */
  #lastBlocked: string | null = null;

  readonly #deps: WatchdogDeps;

  constructor(deps: WatchdogDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#lock = new WatchdogLock(`${deps.statePath}.lock`, this.#now);
  }

  /** Long enough for a whole round: probes, a CUDA check and a recovery command, with slack. */
  #lockTtlMs(compiled: CompiledPolicy): number {
    return 2 * compiled.doc.watchdog.command_timeout_ms + 2 * compiled.doc.health.timeout_ms + 60_000;
  }

  #heldBy(holder: { pid: number; host: string; expires_at: number } | null): string {
    return holder ? `another watchdog (pid ${holder.pid} on ${holder.host}) is acting until ${new Date(holder.expires_at).toISOString()} at the latest` : 'another watchdog is acting';
  }

  noteCudaFault(route: string): void {
    this.#cudaNoted.add(route);
  }

  /** One round. Calls made while a round runs share it rather than overlap. */
  runOnce(): Promise<WatchdogReport> {
    this.#round ??= this.#doRound().finally(() => {
      this.#round = null;
    });
    return this.#round;
  }

  /** In-process rounds, every intervalMs (default: the policy's watchdog.interval_s, re-read each round). */
  start(intervalMs?: number): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    const schedule = () => {
      const ms = intervalMs ?? this.#deps.policy().doc.watchdog.interval_s * 1000;
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.runOnce()
          .catch((err: Error) => this.#deps.log.error({ event: 'watchdog_round_failed', error: err.message }))
          .finally(() => {
            // timer !== null: stop() then start() ran during this round and already scheduled.
            if (!this.#stopped && this.#timer === null) schedule();
          });
      }, ms);
      this.#timer.unref();
    };
    schedule();
  }

  /** Stops the timer; resolves once a round in flight (if any) has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round?.catch(() => undefined);
  }

  async recoverCuda(route: string, trigger: 'admin' | 'watchdog' | 'request'): Promise<RecoveryOutcome> {
    const compiled = this.#deps.policy();
    if (!compiled.routeNames.includes(route)) throw new RouterError('not_found', `no route named "${route}"`, { param: 'route' });
    const rec = compiled.route(route).recovery;
    if (rec?.managed === false) {
      throw new RouterError('route_unmanaged', `route "${route}" is managed: false; the router never recovers it, page the operator`, { param: 'route' });
    }
    if (!rec?.cuda || !rec.host) throw new RouterError('invalid_request', `route "${route}" has no recovery.cuda command in the policy`, { param: 'route' });
    if (this.#busyHosts.has(rec.host)) throw new RouterError('conflict', `a recovery is already running on host "${rec.host}"; try again when it finishes`);
    const lock = this.#lock.acquire(this.#lockTtlMs(compiled));
    if (!lock.ok) throw new RouterError('conflict', `${this.#heldBy(lock.holder)}; try again when it finishes`);
    this.#busyHosts.add(rec.host); // taken before any await, so two calls cannot both pass
    return this.#act(compiled, route, 'cuda', rec.host, { trigger, cause: trigger, why: `on demand (${trigger})` }).finally(() => {
      this.#persist();
      this.#lock.release();
    });
  }

  /**
   * This process's copy is the truth and is saved back after each change. It is re-read only
   * when `refresh` and the file changed under us (another watchdog, or an operator deleting it
   * to reset backoff), and never while an action holds references into the current copy.
   */
  #ensureState(refresh = false): { state: WatchdogState; status: WatchdogReport['state'] } {
    const changed = refresh && this.#busyHosts.size === 0 && stateMtime(this.#deps.statePath) !== this.#stateFileMtime;
    if (this.#state && !changed) return { state: this.#state, status: 'memory' };
    const loaded = loadState(this.#deps.statePath);
    this.#state = loaded.state;
    this.#stateFileMtime = stateMtime(this.#deps.statePath);
    if (loaded.status === 'corrupt') this.#deps.log.warn({ event: 'watchdog_state_reset', path: this.#deps.statePath, detail: loaded.detail });
    return { state: loaded.state, status: loaded.status };
  }

  async #doRound(): Promise<WatchdogReport> {
    const compiled = this.#deps.policy();
    const blocked = this.#deps.blocked?.() ?? null;
    if (blocked !== null) {
      if (blocked !== this.#lastBlocked) this.#deps.log.info({ event: 'watchdog_round_skipped', why: blocked });
      this.#lastBlocked = blocked;
      return { at: this.#now(), state: 'memory', routes: [], failed: false, skipped: blocked };
    }
    this.#lastBlocked = null;
    const lock = this.#lock.acquire(this.#lockTtlMs(compiled));
    if (!lock.ok) {
      const why = this.#heldBy(lock.holder);
      this.#deps.log.info({ event: 'watchdog_round_skipped', why, lock: this.#lock.path });
      return { at: this.#now(), state: 'memory', routes: [], failed: false, skipped: why };
    }
    try {
      return await this.#lockedRound(compiled);
    } finally {
      this.#lock.release();
    }
  }

  async #lockedRound(compiled: CompiledPolicy): Promise<WatchdogReport> {
    const { state, status } = this.#ensureState(true);
    const names = [...compiled.routeNames];
    const noted = new Set(this.#cudaNoted);
    this.#cudaNoted.clear();

    const [probes, checks] = await Promise.all([
      Promise.all(names.map((n) => this.#deps.probe(n).catch((err: Error): ProbeResult => ({ ok: false, busy: false, loading: false, cuda: false, error: `probe threw: ${err.message}`, latencyMs: 0, at: this.#now() })))),
      Promise.all(names.map((n) => this.#cudaCheck(compiled, n))),
    ]);

    const now = this.#now();
    const reports: RouteReport[] = [];
    const running: Promise<void>[] = [];
    names.forEach((name, i) => {
      const probe = probes[i]!;
      const cfg = compiled.route(name);
      const rec = cfg.recovery;
      const s = routeStateOf(state.routes, name);
      const wd = compiled.doc.watchdog;
      const { recovered } = observe(s, probe, { cudaNoted: noted.has(name), cudaCheckFailed: checks[i]!, threshold: wd.restart_after_failures, now, loadingGraceMs: wd.loading_grace_s * 1000 });
      if (recovered) this.#deps.log.info({ event: 'route_recovered', route: name, host: rec?.host ?? null });

      const plan = planAction(s, cfg, wd, now);
      const base = { route: name, host: rec?.host ?? null, consecutive_failures: s.consecutive_failures, cuda_suspected: s.cuda_suspected };
      const probeSeen = { ok: probe.ok, busy: probe.busy, loading: probe.loading, cuda: probe.cuda, status: probe.status, error: probe.error };
      const report: RouteReport = { ...base, managed: rec?.managed !== false, probe: probeSeen, action: plan.deferred ?? plan.action, why: plan.why, result: 'none' };
      reports.push(report);

      if (plan.action === 'page') {
        s.paged = true;
        this.#deps.log.warn({ event: plan.event, ...base, probe_error: probe.error ?? null, action: 'page', why: plan.why });
        this.#settle(report, 'page', 'ok');
      } else if (plan.deferred) {
        this.#deps.log.info({ event: 'recovery_backoff', ...base, action: plan.deferred, why: plan.why });
        this.#settle(report, plan.deferred, 'skipped');
      } else if (plan.action === 'restart' || plan.action === 'cuda') {
        const host = rec!.host!;
        if (this.#busyHosts.has(host)) {
          // Another recovery on the same machine (an admin call, or a sibling route this
          // round) is already touching the GPU; stacking a second one only makes it worse.
          this.#deps.log.info({ event: 'recovery_backoff', ...base, action: plan.action, why: `${plan.why}; another recovery is running on host "${host}"` });
          this.#settle(report, plan.action, 'skipped');
        } else {
          this.#busyHosts.add(host);
          const cause = plan.action === 'restart' ? 'probe_failures' : probe.cuda ? 'cuda_probe' : noted.has(name) ? 'cuda_request' : checks[i] ? 'cuda_check' : 'cuda_earlier';
          running.push(
            this.#act(compiled, name, plan.action, host, { trigger: 'watchdog', cause, why: plan.why }).then((o) => {
              report.result = o.ok ? 'ok' : 'failed';
              report.exit_code = o.exit_code;
              report.timed_out = o.timed_out;
              if (o.error) report.error = o.error;
            }),
          );
        }
      }
    });
    await Promise.all(running);

    for (const name of Object.keys(state.routes)) if (!names.includes(name)) delete state.routes[name];
    const saved = this.#persist();
    return { at: now, state: status, routes: reports, failed: !saved || reports.some((r) => r.result === 'failed') };
  }

  #settle(report: RouteReport, action: 'restart' | 'cuda' | 'page', result: ActionResult): void {
    report.result = result;
    this.#deps.onAction?.(report.route, action, result);
  }

  /** false (and a log line) when the state cannot be written: backoff would not hold next run. */
  #persist(): boolean {
    const state = this.#ensureState().state;
    state.updated_at = this.#now();
    try {
      saveState(this.#deps.statePath, state);
      this.#stateFileMtime = stateMtime(this.#deps.statePath);
      return true;
    } catch (err) {
      this.#deps.log.error({ event: 'watchdog_state_save_failed', path: this.#deps.statePath, error: (err as Error).message });
      return false;
    }
  }

  /** true when the route's recovery.cuda_check says the GPU is poisoned (non-zero exit or hang). */
  async #cudaCheck(compiled: CompiledPolicy, name: string): Promise<boolean> {
    const rec = compiled.route(name).recovery;
    if (!rec?.cuda_check || rec.managed === false || !rec.host) return false;
    if (this.#busyHosts.has(rec.host)) return false; // a recovery is resetting that GPU right now
    const host = compiled.doc.hosts[rec.host]!;
    try {
      const r = await this.#deps.exec(host, rec.cuda_check, { timeoutMs: compiled.doc.watchdog.command_timeout_ms });
      if (r.exitCode === 0 && !r.timedOut) return false;
      this.#deps.log.warn({ event: 'cuda_check_failed', route: name, host: rec.host, command: rec.cuda_check, ...tails(r) });
      return true;
    } catch (err) {
      // Could not ask (host unreachable): that says nothing about the GPU.
      this.#deps.log.warn({ event: 'cuda_check_error', route: name, host: rec.host, command: rec.cuda_check, error: (err as Error).message });
      return false;
    }
  }

  /** Runs a recovery command; the caller has already taken the host lock, released here. */
  async #act(compiled: CompiledPolicy, route: string, action: RecoveryAction, hostName: string, ctx: ActionContext): Promise<RecoveryOutcome> {
    const started = this.#now();
    const s = routeStateOf(this.#ensureState().state.routes, route);
    s.last_action_at = started;
    s.actions = [...recentActions(s.actions, started), started];
    const command = compiled.route(route).recovery?.[action];
    let line: Record<string, unknown> = { route, host: hostName, action, command, ...ctx };
    let outcome: RecoveryOutcome;
    try {
      // Inside the try: whatever goes wrong, the host lock is released below.
      const host = compiled.doc.hosts[hostName]!;
      line = { ...line, target: `${host.user}@${host.address}:${host.port}` };
      this.#deps.log.info({ event: 'recovery_started', ...line });
      this.#deps.onRecoveryStart?.(route, action, hostName);
      const r = await this.#deps.exec(host, command!, { timeoutMs: compiled.doc.watchdog.command_timeout_ms });
      outcome = { route, host: hostName, ...tails(r), ok: r.exitCode === 0 && !r.timedOut };
    } catch (err) {
      const fields = { exit_code: null, timed_out: false, stdout_tail: '', stderr_tail: '', duration_ms: this.#now() - started };
      outcome = { route, host: hostName, ...fields, ok: false, error: (err as Error).message };
    } finally {
      this.#busyHosts.delete(hostName);
    }
    this.#deps.log[outcome.ok ? 'info' : 'error']({ event: 'recovery_action', ...outcome, ...line });
    const { ok, exit_code, timed_out, error } = outcome;
    s.last_result = { at: started, action, ok, exit_code, timed_out, trigger: ctx.trigger, ...(error ? { error } : {}) };
    if (outcome.ok && action === 'cuda') s.cuda_suspected = false;
    this.#deps.onAction?.(route, action, outcome.ok ? 'ok' : 'failed');
    return outcome;
  }
}

function tails(r: Awaited<ReturnType<typeof runRemote>>) {
  return {
    exit_code: r.exitCode,
    timed_out: r.timedOut,
    duration_ms: r.durationMs,
    stdout_tail: r.stdout.slice(-TAIL_CHARS),
    stderr_tail: r.stderr.slice(-TAIL_CHARS),
    ...(r.signal ? { signal: r.signal } : {}),
  };
}
