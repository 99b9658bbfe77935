// The router's long-lived parts, built once and handed to the HTTP layer: the policy store,
// live route state, health checks, metrics and logs. Nothing here listens on a socket.
import type { CompiledPolicy } from './policy/compile.ts';
import { PolicyStore, type ReloadResult } from './policy/store.ts';
import { PolicyError } from './policy/load.ts';
import { openLogs, type RouterLogs } from './obs/logs.ts';
import { RouterMetrics } from './obs/metrics.ts';
import { HealthChecker, type ProbeFn } from './upstream/health.ts';
import { RouteStates } from './upstream/route-state.ts';

export interface ServiceOptions {
  policy: CompiledPolicy;
  policyPath?: string | undefined;
  logDir: string;
  adminToken?: string | undefined;
  quiet?: boolean;
  /** Replace the HTTP probe (tests of health logic only). */
  probe?: ProbeFn;
  processMetrics?: boolean;
}

/** One reload attempt, for the web UI's policy page (newest last, at most RELOAD_HISTORY). */
export interface ReloadEvent {
  at: string;
  source: 'admin' | 'file';
  result: 'ok' | 'unchanged' | 'invalid';
  hash: string;
  previous_hash: string;
  changed: string[];
  errors: string[];
}

const RELOAD_HISTORY = 50;

export interface CudaFaultListener {
  (route: string): void;
}

export class RouterService {
  readonly store: PolicyStore;
  readonly states: RouteStates;
  readonly metrics: RouterMetrics;
  readonly logs: RouterLogs;
  readonly health: HealthChecker;
  readonly adminToken: string | undefined;
  readonly startedAt = Date.now();
  readonly reloadHistory: ReloadEvent[] = [];
  #cudaListeners: CudaFaultListener[] = [];

  constructor(opts: ServiceOptions) {
    this.store = new PolicyStore(opts.policy, opts.policyPath);
    this.states = new RouteStates(opts.policy);
    this.logs = openLogs(opts.logDir, { quiet: opts.quiet ?? false });
    this.metrics = new RouterMetrics(() => this.states, { processMetrics: opts.processMetrics ?? true });
    this.metrics.zeroFor(opts.policy.routeNames);
    this.metrics.setPolicy(opts.policy.hash, this.store.loadedAt);
    this.health = new HealthChecker(this.states, () => this.store.current, opts.probe ? { probe: opts.probe } : {});
    this.adminToken = opts.adminToken;
  }

  get policy(): CompiledPolicy {
    return this.store.current;
  }

  /** Swaps in `next` and rebuilds state for the routes that changed. */
  apply(next: CompiledPolicy): ReloadResult {
    const result = this.store.swap(next);
    this.#afterSwap(result);
    return result;
  }

  /**
   * Reads the policy file again. An invalid file changes nothing, is counted and remembered
   * here, and the PolicyError is rethrown for the caller to report.
   */
  reloadFromFile(source: ReloadEvent['source'] = 'admin'): ReloadResult {
    let result: ReloadResult;
    try {
      result = this.store.reloadFromFile();
    } catch (err) {
      if (err instanceof PolicyError) {
        this.metrics.reloads.inc({ result: 'invalid' });
        this.#remember({ source, result: 'invalid', hash: this.policy.hash, previous_hash: this.policy.hash, changed: [], errors: err.errors });
      }
      throw err;
    }
    this.#afterSwap(result);
    this.#remember({ source, result: result.result, hash: result.hash, previous_hash: result.previousHash, changed: result.changed, errors: [] });
    return result;
  }

  #remember(e: Omit<ReloadEvent, 'at'>): void {
    this.reloadHistory.push({ at: new Date().toISOString(), ...e });
    if (this.reloadHistory.length > RELOAD_HISTORY) this.reloadHistory.shift();
  }

  #afterSwap(result: ReloadResult): void {
    this.metrics.reloads.inc({ result: result.result });
    if (result.result === 'unchanged') return;
    const routes = this.states.sync(this.store.current);
    this.metrics.zeroFor([...routes.added, ...routes.replaced]);
    this.metrics.setPolicy(result.hash, this.store.loadedAt);
    this.logs.service.info({ hash: result.hash, changed: result.changed, routes }, 'policy reloaded');
    // New or changed routes are probed at once rather than at the next interval.
    if (routes.added.length + routes.replaced.length > 0) void this.health.probeAll();
  }

  onCudaFault(listener: CudaFaultListener): void {
    this.#cudaListeners.push(listener);
  }

  cudaFault(route: string): void {
    for (const l of this.#cudaListeners) l(route);
  }

  async close(): Promise<void> {
    this.health.stop();
    await this.states.close();
    this.logs.flush();
  }
}
