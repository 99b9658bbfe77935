// Every metric of SPEC §8, defined once on a registry of our own (no global state, so tests
// get a fresh one). Label values come only from the policy (route and bucket names), from
// fixed enums, or from HTTP status codes: cardinality is bounded by the policy.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { RouteStates } from '../upstream/route-state.ts';
import { LabelledCounter, LabelledHistogram, type CounterSeries, type HistogramSeries } from './labelled-series.ts';

interface RouteSeries {
  duration: HistogramSeries<'route'>;
  ttfb: HistogramSeries<'route'>;
  prompt: CounterSeries<'route' | 'type'>;
  completion: CounterSeries<'route' | 'type'>;
}

export type FallbackKind = 'busy' | 'outage' | 'drain' | 'image' | 'size';

// Latency buckets from 5 ms to 5 min: a JSON classify on the 4090 answers in ~0.6 s, a long
// reasoning stream on spark may run for minutes.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFB_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class RouterMetrics {
  readonly registry = new Registry();
  // The four metrics every request updates are labelled series of our own (labelled-series.ts).
  readonly requests = new LabelledCounter({ name: 'homelab_router_requests_total', help: 'Requests answered, by final route, bucket, decision reason and HTTP status.', labelNames: ['route', 'bucket', 'reason', 'code'] as const, registers: [this.registry] });
  readonly duration = new LabelledHistogram({ name: 'homelab_router_request_duration_seconds', help: 'Time from request received to response end, by route.', labelNames: ['route'] as const, buckets: DURATION_BUCKETS, registers: [this.registry] });
  readonly ttfb = new LabelledHistogram({ name: 'homelab_router_time_to_first_byte_seconds', help: 'Time from request received to the first response byte sent, by route.', labelNames: ['route'] as const, buckets: TTFB_BUCKETS, registers: [this.registry] });
  readonly inFlight = new Gauge({ name: 'homelab_router_upstream_in_flight', help: 'Requests holding a slot on the route.', labelNames: ['route'] as const, registers: [this.registry] });
  readonly queued = new Gauge({ name: 'homelab_router_upstream_queued', help: 'Requests waiting for a slot on the route.', labelNames: ['route'] as const, registers: [this.registry] });
  readonly up = new Gauge({ name: 'homelab_router_upstream_up', help: '1 when the route is healthy.', labelNames: ['route'] as const, registers: [this.registry] });
  readonly drained = new Gauge({ name: 'homelab_router_upstream_drained', help: '1 when the route is drained.', labelNames: ['route'] as const, registers: [this.registry] });
  readonly fallbacks = new Counter({ name: 'homelab_router_fallbacks_total', help: 'Requests moved from one route to another, by why.', labelNames: ['from', 'to', 'kind'] as const, registers: [this.registry] });
  readonly tokens = new LabelledCounter({ name: 'homelab_router_tokens_total', help: 'Tokens reported by upstreams, by route and type (prompt|completion).', labelNames: ['route', 'type'] as const, registers: [this.registry] });
  readonly reloads = new Counter({ name: 'homelab_router_policy_reloads_total', help: 'Policy reloads, by result (ok|unchanged|invalid).', labelNames: ['result'] as const, registers: [this.registry] });
  readonly recoveries = new Counter({ name: 'homelab_router_recoveries_total', help: 'Recovery actions, by route, action (restart|cuda|page) and result.', labelNames: ['route', 'action', 'result'] as const, registers: [this.registry] });
  readonly upstreamFailures = new Counter({ name: 'homelab_router_upstream_failures_total', help: 'Upstream-caused failures (refused, reset, timeout, 5xx, mid-stream death), by route and kind.', labelNames: ['route', 'kind'] as const, registers: [this.registry] });
  // `client` is a key name (SPEC §12) or "none": bounded by the keys, never a client-supplied string.
  readonly clientRequests = new Counter({ name: 'homelab_router_client_requests_total', help: 'Requests made with an API key, by key name (client) and HTTP status; refusals of unknown keys count as client "none".', labelNames: ['client', 'code'] as const, registers: [this.registry] });
  readonly clientTokens = new Counter({ name: 'homelab_router_client_tokens_total', help: 'Tokens reported by upstreams for requests made with an API key, by key name (client) and type (prompt|completion).', labelNames: ['client', 'type'] as const, registers: [this.registry] });
  readonly policyInfo = new Gauge({ name: 'homelab_router_policy_info', help: 'The active policy hash (value always 1).', labelNames: ['hash'] as const, registers: [this.registry] });
  // The request log (SPEC §10): rows written, rows dropped (queue full, or the database could not
  // be written), rows waiting, and whether the database is being written.
  readonly requestLogWritten = new Counter({ name: 'homelab_router_request_log_written_total', help: 'Request-log rows written to requests.db.', registers: [this.registry] });
  readonly requestLogDropped = new Counter({ name: 'homelab_router_request_log_dropped_total', help: 'Request-log rows lost, by reason (queue_full|write_failed).', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly requestLogQueued = new Gauge({ name: 'homelab_router_request_log_queue_rows', help: 'Request-log rows waiting to be written.', registers: [this.registry] });
  readonly requestLogUp = new Gauge({ name: 'homelab_router_request_log_up', help: '1 while requests.db is being written, 0 while rows are dropped.', registers: [this.registry] });
  readonly lastReload = new Gauge({ name: 'homelab_router_policy_last_reload_success_timestamp_seconds', help: 'Unix time of the last successful policy load.', registers: [this.registry] });

  constructor(states: () => RouteStates, opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) this.#processMetrics();
    // Route gauges are read from live state at scrape time, so they can never drift.
    const routeGauge = (gauge: Gauge<'route'>, read: (r: ReturnType<RouteStates['all']>[number]) => number) => {
      (gauge as unknown as { collect: () => void }).collect = function collect(this: Gauge<'route'>) {
        this.reset();
        for (const r of states().all()) this.set({ route: r.name }, read(r));
      };
    };
    routeGauge(this.inFlight, (r) => r.admission.inFlight);
    routeGauge(this.queued, (r) => r.admission.queued);
    routeGauge(this.up, (r) => (r.health.healthy ? 1 : 0));
    routeGauge(this.drained, (r) => (r.drained ? 1 : 0));
  }

  // prom-client's defaults add `nodejs_active_{handles,requests,resources}_total` gauges next to
  // the same figures by type; Prometheus reserves `_total` for counters (promtool flags them),
  // so the totals are dropped and the by-type gauges kept.
  #processMetrics(): void {
    collectDefaultMetrics({ register: this.registry, prefix: 'homelab_router_' });
    for (const kind of ['handles', 'requests', 'resources']) this.registry.removeSingleMetric(`homelab_router_nodejs_active_${kind}_total`);
  }

  /** Pre-creates the series an operator alerts on, so a quiet route shows 0, not nothing. */
  zeroFor(routes: readonly string[]): void {
    for (const route of routes) {
      this.duration.zero({ route });
      this.ttfb.zero({ route });
      this.tokens.series({ route, type: 'prompt' });
      this.tokens.series({ route, type: 'completion' });
    }
    for (const result of ['ok', 'unchanged', 'invalid']) this.reloads.labels({ result }).inc(0);
  }

  setPolicy(hash: string, atMs: number): void {
    this.policyInfo.reset();
    this.policyInfo.set({ hash }, 1);
    this.lastReload.set(Math.floor(atMs / 1000));
  }

  // The series one finished request updates, looked up once per label set.
  readonly #requestSeries = new Map<string, CounterSeries<'route' | 'bucket' | 'reason' | 'code'>>();
  readonly #routeSeries = new Map<string, RouteSeries>();

  /** A finished /v1/* request that was routed (or refused before it could be): SPEC §8's request metrics. */
  recordRequest(r: { route: string; bucket: string; reason: string; status: number; durationS: number | null; ttfbS: number | null; promptTokens: number | null; completionTokens: number | null }): void {
    const key = `${r.route}\u0000${r.bucket}\u0000${r.reason}\u0000${r.status}`;
    let count = this.#requestSeries.get(key);
    if (count === undefined) {
      count = this.requests.series({ route: r.route, bucket: r.bucket, reason: r.reason, code: String(r.status) });
      this.#requestSeries.set(key, count);
    }
    count.inc();
    if (r.durationS === null) return;
    let series = this.#routeSeries.get(r.route);
    if (series === undefined) {
      const route = r.route;
      series = { duration: this.duration.series({ route }), ttfb: this.ttfb.series({ route }), prompt: this.tokens.series({ route, type: 'prompt' }), completion: this.tokens.series({ route, type: 'completion' }) };
      this.#routeSeries.set(route, series);
    }
    series.duration.observe(r.durationS);
    if (r.ttfbS !== null) series.ttfb.observe(r.ttfbS);
    if (r.promptTokens !== null) {
      series.prompt.inc(r.promptTokens);
      series.completion.inc(r.completionTokens ?? 0);
    }
  }

  /**
   * Replica gauges, registered only by a router with a cluster block:
   * homelab_router_cluster_redis_up (1 when shared state is reachable) and
   * homelab_router_cluster_leader (1 while this replica probes and runs the watchdog).
   */
  clusterGauges(status: () => { redis: 'up' | 'down'; leader: boolean }): void {
    new Gauge({ name: 'homelab_router_cluster_redis_up', help: '1 when this replica reaches Redis and shares slots, drains and limits through it; 0 while it admits on its local share.', registers: [this.registry], collect() { this.set(status().redis === 'up' ? 1 : 0); } });
    new Gauge({ name: 'homelab_router_cluster_leader', help: '1 while this replica holds the lock that makes it the one that probes upstreams and runs the watchdog.', registers: [this.registry], collect() { this.set(status().leader ? 1 : 0); } });
  }
}

/** The router host's gauges (obs/host.ts samples them in the background), read at scrape time. */
export interface HostFigures {
  cpu_load_percent: number | null;
  memory_used_bytes: number | null;
  memory_total_bytes: number | null;
  gpus: ReadonlyArray<{ index: number; utilization_percent: number | null }>;
}

export function registerHostGauges(registry: Registry, sample: () => HostFigures): void {
  new Gauge({ name: 'homelab_router_host_cpu_load_percent', help: 'CPU load of the router host.', registers: [registry], collect() { const v = sample().cpu_load_percent; if (v !== null) this.set(v); } });
  new Gauge({ name: 'homelab_router_host_memory_used_bytes', help: 'Memory in use on the router host.', registers: [registry], collect() { const v = sample().memory_used_bytes; if (v !== null) this.set(v); } });
  new Gauge({ name: 'homelab_router_host_memory_total_bytes', help: 'Memory of the router host.', registers: [registry], collect() { const v = sample().memory_total_bytes; if (v !== null) this.set(v); } });
  new Gauge({
    name: 'homelab_router_host_gpu_utilization_percent', help: 'GPU utilisation on the router host.', labelNames: ['gpu'] as const, registers: [registry],
    collect() { this.reset(); for (const g of sample().gpus) if (g.utilization_percent !== null) this.set({ gpu: String(g.index) }, g.utilization_percent); },
  });
}
