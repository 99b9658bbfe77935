// The router's long-lived parts, built once and handed to the HTTP layer: the policy store,
// live route state, health checks, metrics and logs. Nothing here listens on a socket.
import type { CompiledPolicy } from './policy/compile.ts';
import { PolicyStore, type ReloadResult } from './policy/store.ts';
import { openLogs, type RouterLogs } from './obs/logs.ts';
import { KeyService } from './keys/service.ts';
import { RouterMetrics } from './obs/metrics.ts';
import { routeChangeReporter } from './obs/route-changes.ts';
import { HealthChecker, type ProbeFn } from './upstream/health.ts';
import { RouteStates } from './upstream/route-state.ts';
import { SchemaGuard } from './schema-guard/guard.ts';

export interface ServiceOptions {
  policy: CompiledPolicy;
  policyPath?: string | undefined;
  logDir: string;
  /** $HOMELAB_ROUTER_DATA_DIR: keys.db lives here. Undefined: keys in memory only (tests). */
  dataDir?: string | undefined;
  adminToken?: string | undefined;
  quiet?: boolean;
  /** Replace the HTTP probe (tests of health logic only). */
  probe?: ProbeFn;
  processMetrics?: boolean;
}

export interface CudaFaultListener {
  (route: string): void;
}

export class RouterService {
  readonly store: PolicyStore;
  readonly states: RouteStates;
  readonly metrics: RouterMetrics;
  readonly logs: RouterLogs;
  readonly health: HealthChecker;
  /** Fail-closed requests' JSON Schemas: bounds, and compile/validate on worker threads. */
  readonly schemas: SchemaGuard;
  readonly keys: KeyService;
  readonly adminToken: string | undefined;
  readonly startedAt = Date.now();
  #cudaListeners: CudaFaultListener[] = [];

  constructor(opts: ServiceOptions) {
    this.store = new PolicyStore(opts.policy, opts.policyPath);
    this.logs = openLogs(opts.logDir, { quiet: opts.quiet ?? false });
    this.states = new RouteStates(opts.policy, { onChange: routeChangeReporter(this.logs, { quiet: opts.quiet ?? false }) });
    this.metrics = new RouterMetrics(() => this.states, { processMetrics: opts.processMetrics ?? true });
    this.metrics.zeroFor(opts.policy.routeNames);
    this.metrics.setPolicy(opts.policy.hash, this.store.loadedAt);
    this.health = new HealthChecker(this.states, () => this.store.current, opts.probe ? { probe: opts.probe } : {});
    this.schemas = new SchemaGuard(opts.policy.policy.fail_closed.workers);
    this.adminToken = opts.adminToken;
    this.keys = new KeyService({ dataDir: opts.dataDir, policy: () => this.store.current, metrics: this.metrics, warn: (msg, detail) => this.logs.service.warn(detail ?? {}, msg) });
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

  reloadFromFile(): ReloadResult {
    const result = this.store.reloadFromFile();
    this.#afterSwap(result);
    return result;
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
    await this.schemas.close();
    this.keys.close();
    this.logs.flush();
  }
}
