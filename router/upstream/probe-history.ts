// The last health probes of one route, for the web UI's upstreams page: when, passed or not,
// how long, the HTTP status or the kind of error, busy or loading. Bounded twice: a fixed ring of
// PROBE_HISTORY_MAX entries (memory does not grow with uptime, whatever health.interval_s is)
// and nothing older than PROBE_HISTORY_MAX_AGE_MS is shown. It keeps no error text: an
// upstream's error body can echo a prompt and a connect error names the GPU's address, so only
// the error's kind is kept (router/upstream/redact.ts), as on the unauthenticated /stats.
import type { ProbeResult } from './probe.ts';
import { errorKind } from './redact.ts';

export const PROBE_HISTORY_MAX = 60;
export const PROBE_HISTORY_MAX_AGE_MS = 3_600_000;

export interface ProbeRecord {
  /** When the probe started (epoch ms). */
  at: number;
  ok: boolean;
  latencyMs: number;
  /** The HTTP status, when the upstream answered at all. */
  status: number | null;
  /** Of a failed probe: "HTTP 503", "timeout", "ECONNREFUSED"…; null when it passed. */
  error: string | null;
  /** Not ready, not broken: the upstream said it is full (429) or still loading its model. */
  busy: boolean;
  loading: boolean;
  /** The answer named a CUDA fault. */
  cuda: boolean;
}

/** A probe's result as the history keeps it: no error text. */
export function probeRecord(r: ProbeResult): ProbeRecord {
  return {
    at: r.at,
    ok: r.ok,
    latencyMs: r.latencyMs,
    status: r.status ?? null,
    error: r.ok ? null : r.status !== undefined ? `HTTP ${r.status}` : errorKind(r.error ?? ''),
    busy: r.busy,
    loading: r.loading,
    cuda: r.cuda,
  };
}

export class ProbeHistory {
  readonly #ring: Array<ProbeRecord | undefined>;
  readonly #maxAgeMs: number;
  /** Where the next record goes. */
  #next = 0;
  #size = 0;

  constructor(max = PROBE_HISTORY_MAX, maxAgeMs = PROBE_HISTORY_MAX_AGE_MS) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`a probe history holds at least 1 probe (got ${max})`);
    this.#ring = new Array<ProbeRecord | undefined>(max).fill(undefined);
    this.#maxAgeMs = maxAgeMs;
  }

  get capacity(): number {
    return this.#ring.length;
  }

  /** Records held now, however old (at most `capacity`). */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds a probe. The same result told twice (replicas replay the last probe from Redis at
   * start) is kept once, and one older than the newest held (a stale one arriving late) is
   * dropped: the history stays in time order.
   */
  add(result: ProbeResult): void {
    const record = probeRecord(result);
    const newest = this.#size === 0 ? undefined : this.#ring[(this.#next - 1 + this.#ring.length) % this.#ring.length];
    if (newest !== undefined && (record.at < newest.at || (record.at === newest.at && sameRecord(record, newest)))) return;
    this.#ring[this.#next] = record;
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#size = Math.min(this.#size + 1, this.#ring.length);
  }

  /** The probes of the last PROBE_HISTORY_MAX_AGE_MS, oldest first. */
  list(now = Date.now()): ProbeRecord[] {
    const out: ProbeRecord[] = [];
    const n = this.#ring.length;
    const since = now - this.#maxAgeMs;
    for (let i = 0; i < this.#size; i++) {
      const r = this.#ring[(this.#next - this.#size + i + n) % n]!;
      if (r.at >= since) out.push(r);
    }
    return out;
  }
}

function sameRecord(a: ProbeRecord, b: ProbeRecord): boolean {
  return a.ok === b.ok && a.latencyMs === b.latencyMs && a.status === b.status && a.error === b.error && a.busy === b.busy && a.loading === b.loading && a.cuda === b.cuda;
}
