// The request metrics every finished request updates (a counter by route, bucket, reason and
// status; two latency histograms and a token counter by route), counted in plain numbers per
// label set and handed to the registry at scrape time in the shape prom-client's own Counter and
// Histogram give it, so the exposition is the same line for line. prom-client builds and hashes a
// label object, validates the label names and converts the bucket bound to a property name on
// every update (~3 µs for a request's five updates, warm); here an update is a map lookup the
// first time a label set is seen and an addition after that.
import type { Metric, Registry } from 'prom-client';

type Labels<L extends string> = Record<L, string>;

/** A value as the registry reads it (prom-client's metric objects have this shape). */
interface ExportedValue {
  labels: Record<string, string | number>;
  /** Written after `labels` in the text exposition (a histogram's series labels, after `le`). */
  sharedLabels?: Record<string, string>;
  value: number;
  metricName?: string;
  /** prom-client's buckets carry an exemplar slot (none here). */
  exemplar?: null;
}

interface ExportedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: ExportedValue[];
  aggregator: 'sum';
}

interface SeriesConfig<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

/** One label set's count. */
export class CounterSeries<L extends string> {
  value = 0;
  constructor(readonly labels: Labels<L>) {}

  inc(by = 1): void {
    this.value += by;
  }
}

/** One label set's observations, in per-bucket (not cumulative) counts. */
export class HistogramSeries<L extends string> {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];
  constructor(
    readonly labels: Labels<L>,
    bounds: readonly number[],
  ) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${v}`);
    this.sum += v;
    this.count += 1;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (v <= bounds[i]!) {
        this.counts[i]! += 1;
        return;
      }
    }
    // Above the last bound: counted in +Inf (count) only, as prom-client does.
  }
}

abstract class LabelledMetric<L extends string, S extends { labels: Labels<L> }> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  readonly #labelNames: readonly L[];
  #series = new Map<string, S>();

  constructor(cfg: SeriesConfig<L>) {
    this.name = cfg.name;
    this.help = cfg.help;
    this.#labelNames = cfg.labelNames;
    for (const registry of cfg.registers) registry.registerMetric(this as unknown as Metric);
  }

  protected abstract create(labels: Labels<L>): S;

  /** The series of this label set, made on first use; keep it to update it without a lookup. */
  series(labels: Labels<L>): S {
    let key = '';
    for (const n of this.#labelNames) {
      const v = labels[n];
      if (typeof v !== 'string') throw new Error(`${this.name}: label "${n}" is missing`);
      key += v + '\u0000';
    }
    let s = this.#series.get(key);
    if (s === undefined) {
      const own = {} as Labels<L>;
      for (const n of this.#labelNames) own[n] = labels[n];
      s = this.create(own);
      this.#series.set(key, s);
    }
    return s;
  }

  protected all(): IterableIterator<S> {
    return this.#series.values();
  }

  /**
   * Drops every series, as prom-client's reset() does (`registry.resetMetrics()`). A series a
   * caller kept is no longer exported afterwards; the router never resets these metrics.
   */
  reset(): void {
    this.#series = new Map();
  }
}

export class LabelledCounter<L extends string> extends LabelledMetric<L, CounterSeries<L>> {
  readonly type = 'counter' as const;

  protected create(labels: Labels<L>): CounterSeries<L> {
    return new CounterSeries(labels);
  }

  inc(labels: Labels<L>, by = 1): void {
    this.series(labels).inc(by);
  }

  async get(): Promise<ExportedMetric> {
    const values: ExportedValue[] = [];
    for (const s of this.all()) values.push({ labels: { ...s.labels }, value: s.value });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class LabelledHistogram<L extends string> extends LabelledMetric<L, HistogramSeries<L>> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];

  constructor(cfg: SeriesConfig<L> & { buckets: readonly number[] }) {
    super(cfg);
    this.buckets = [...cfg.buckets].sort((a, b) => a - b);
  }

  protected create(labels: Labels<L>): HistogramSeries<L> {
    return new HistogramSeries(labels, this.buckets);
  }

  /** A series with no observations yet (a quiet route shows 0, not nothing). */
  zero(labels: Labels<L>): void {
    this.series(labels);
  }

  /** For the text exposition: `le` apart from the series' own labels, as prom-client writes it. */
  async getForPromString(): Promise<ExportedMetric> {
    const none: ExportedValue['labels'] = {};
    return this.#export((le, labels) => ({ labels: le === undefined ? none : { le }, sharedLabels: labels }));
  }

  /** For JSON (`getMetricsAsJSON`): the series' labels and `le` in one object. */
  async get(): Promise<ExportedMetric> {
    return this.#export((le, labels) => ({ labels: le === undefined ? { ...labels } : { le, ...labels } }));
  }

  #export(shape: (le: number | string | undefined, labels: Labels<L>) => Pick<ExportedValue, 'labels' | 'sharedLabels'>): ExportedMetric {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.all()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]!;
        values.push({ ...shape(this.buckets[i]!, s.labels), value: acc, metricName: bucket, exemplar: null });
      }
      values.push({ ...shape('+Inf', s.labels), value: s.count, metricName: bucket, exemplar: null });
      values.push({ ...shape(undefined, s.labels), value: s.sum, metricName: `${this.name}_sum` });
      values.push({ ...shape(undefined, s.labels), value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
