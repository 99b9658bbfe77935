// The router's long-lived parts, built once and handed to the HTTP layer: the policy store,
// live route state, health checks, metrics and logs. Nothing here listens on a socket.
import type { CompiledPolicy } from './policy/compile.ts';
import { PolicyStore, type ReloadResult } from './policy/store.ts';
import { PolicyError } from './policy/load.ts';
import { openLogs, type RouterLogs } from './obs/logs.ts';
import { KeyService } from './keys/service.ts';
import { join } from 'node:path';
import { decisionLogSink, type RequestSink } from './obs/request-record.ts';
import { RequestLog } from './reqlog/request-log.ts';
import { RouterMetrics } from './obs/metrics.ts';
import { routeChangeReporter } from './obs/route-changes.ts';
import { HealthChecker, type ProbeFn } from './upstream/health.ts';
import { RouteStates } from './upstream/route-state.ts';
import { SchemaGuard } from './schema-guard/guard.ts';
import { Cluster } from './cluster/cluster.ts';
import { replicaConfig } from './cluster/replica-config.ts';

export interface ServiceOptions {
  policy: CompiledPolicy;
  policyPath?: string | undefined;
  logDir: string;
  /** $HOMELAB_ROUTER_DATA_DIR: keys.db and requests.db. Undefined: keys in memory only and no request log (tests). */
  dataDir?: string | undefined;
  adminToken?: string | undefined;
  quiet?: boolean;
  /** Replace the HTTP probe (tests of health logic only). */
  probe?: ProbeFn;
  processMetrics?: boolean;
  /** This router's id among replicas when the policy's cluster block names none. */
  replicaId?: string;
  /** False: no request log even with a data directory (tests that only need keys.db). */
  requestLog?: boolean;
}

export { replicaConfig } from './cluster/replica-config.ts';

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
  /** Fail-closed requests' JSON Schemas: bounds, and compile/validate on worker threads. */
  readonly schemas: SchemaGuard;
  readonly keys: KeyService;
  /** Set when the policy has a cluster block: slots, drains and health shared through Redis. */
  readonly cluster: Cluster | undefined;
  /** Every finished /v1/* request's record goes to each of these. */
  readonly requestSinks: RequestSink[];
  readonly requestLog: RequestLog | undefined;
  readonly adminToken: string | undefined;
  readonly startedAt = Date.now();
  readonly reloadHistory: ReloadEvent[] = [];
  #cudaListeners: CudaFaultListener[] = [];

  constructor(opts: ServiceOptions) {
    this.store = new PolicyStore(opts.policy, opts.policyPath);
    this.logs = openLogs(opts.logDir, { quiet: opts.quiet ?? false });
    const clusterCfg = opts.policy.doc.cluster;
    this.cluster = clusterCfg ? new Cluster(replicaConfig(clusterCfg, opts.replicaId), this.logs.service, () => this.store.current.doc.server.request_timeout_ms) : undefined;
    this.states = new RouteStates(opts.policy, {
      onChange: routeChangeReporter(this.logs, { quiet: opts.quiet ?? false }),
      ...(this.cluster ? { limiter: this.cluster.limiter, drains: this.cluster.drains } : {}),
    });
    this.metrics = new RouterMetrics(() => this.states, { processMetrics: opts.processMetrics ?? true });
    this.metrics.zeroFor(opts.policy.routeNames);
    this.metrics.setPolicy(opts.policy.hash, this.store.loadedAt);
    const cluster = this.cluster;
    this.health = new HealthChecker(this.states, () => this.store.current, {
      ...(opts.probe ? { probe: opts.probe } : {}),
      ...(cluster ? { mayProbe: () => cluster.mayProbe(), onProbe: (rt, result) => cluster.publishProbe(rt.name, result) } : {}),
    });
    cluster?.onProbe((route, result) => this.states.get(route)?.recordProbe(result));
    if (cluster) this.metrics.clusterGauges(() => cluster.status);
    this.schemas = new SchemaGuard(opts.policy.doc.fail_closed.workers);
    this.adminToken = opts.adminToken;
    this.keys = new KeyService({ dataDir: opts.dataDir, policy: () => this.store.current, metrics: this.metrics, warn: (msg, detail) => this.logs.service.warn(detail ?? {}, msg), ...(cluster ? { limits: cluster.keyLimits } : {}) });
    cluster?.mirrorKeys(this.keys);
    this.requestSinks = [decisionLogSink(this.logs.decision)];
    if (opts.dataDir !== undefined && opts.requestLog !== false) {
      this.requestLog = new RequestLog({ path: join(opts.dataDir, 'requests.db'), policy: () => this.store.current, metrics: this.metrics, log: this.logs.service });
      this.requestSinks.push(this.requestLog);
    }
  }

  /**
   * Joins the cluster, when there is one: connects to Redis (never waits on a dead one), reads
   * the shared drains and the last probe results. A router without `cluster` has nothing to do.
   */
  async start(): Promise<void> {
    const cluster = this.cluster;
    if (!cluster) return;
    await cluster.start();
    for (const e of await cluster.lastProbes()) this.states.get(e.route)?.recordProbe(e.result);
  }

  get policy(): CompiledPolicy {
    return this.store.current;
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
    await this.schemas.close();
    this.keys.close();
    await this.cluster?.close();
    await this.requestLog?.close();
    this.logs.flush();
  }
}
