// The router's long-lived parts, built once and handed to the HTTP layer: the policy store,
// live route state, health checks, metrics and logs. Nothing here listens on a socket.
import type { CompiledPolicy } from './policy/compile.ts';
import { PolicyStore, type ReloadResult } from './policy/store.ts';
import { join } from 'node:path';
import { openLogs, type RouterLogs } from './obs/logs.ts';
import { decisionLogSink, type RequestSink } from './obs/request-record.ts';
import { RequestLog } from './reqlog/request-log.ts';
import { RouterMetrics } from './obs/metrics.ts';
import { HealthChecker, type ProbeFn } from './upstream/health.ts';
import { RouteStates } from './upstream/route-state.ts';

export interface ServiceOptions {
  policy: CompiledPolicy;
  policyPath?: string | undefined;
  logDir: string;
  /** Where requests.db goes ($HOMELAB_ROUTER_DATA_DIR); without it there is no request log. */
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
  /** Every finished /v1/* request's record goes to each of these. */
  readonly requestSinks: RequestSink[];
  readonly requestLog: RequestLog | undefined;
  readonly adminToken: string | undefined;
  readonly startedAt = Date.now();
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
    this.requestSinks = [decisionLogSink(this.logs.decision)];
    if (opts.dataDir !== undefined) {
      this.requestLog = new RequestLog({ path: join(opts.dataDir, 'requests.db'), policy: () => this.store.current, metrics: this.metrics, log: this.logs.service });
      this.requestSinks.push(this.requestLog);
    }
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
    await this.requestLog?.close();
    this.logs.flush();
  }
}
