// The request log's front, on the router's main thread: a sink that takes each finished
// request's record, queues it in memory as a row of plain values (row.ts) and hands the queue
// to the worker thread that owns requests.db (router/reqlog/worker.ts) every FLUSH_MS, or at
// once when BATCH_MAX rows wait. The request path pays for that row (two JSON.stringify of
// small objects) and one array push. The queue is bounded: past QUEUE_MAX rows the
// oldest are dropped and counted, so a stalled disk can never grow the router's memory.
// At most two batches are with the worker at a time; the rest wait here, bounded.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { RequestRecord, RequestSink } from '../obs/request-record.ts';
import type { RouterMetrics } from '../obs/metrics.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import { RUNNING_BUILT } from '../paths.ts';
import type { LogStateChange } from './database.ts';
import type { FromWorker, ToWorker, WorkerData } from './protocol.ts';
import { W, wireRow, type RequestRow, type WireRow } from './row.ts';
import type { WriterConfig } from './writer.ts';

export const FLUSH_MS = 100;
export const BATCH_MAX = 500;
export const QUEUE_MAX = 50_000;
/** Stored bodies (store_payloads) waiting in the queue are bounded too. */
export const QUEUE_PAYLOAD_BYTES = 64 * 1024 * 1024;
const MAX_BATCHES_AT_WORKER = 2;
/**
 * The worker's young generation: a batch is at most BATCH_MAX rows, so V8's default (growing to
 * tens of MB under load) only holds garbage. Capped, the worker's heap stays at ~14 MB instead of
 * ~27 MB, with no measurable CPU cost (bench/request-log-pipeline.ts at 5,000 rows/s: 21.7-24.3
 * µs a row against 24.3-26.3 uncapped).
 */
const LOG_WORKER_YOUNG_GENERATION_MB = 4;
const CLOSE_TIMEOUT_MS = 10_000;

export interface RequestLogOptions {
  path: string;
  policy: () => CompiledPolicy;
  metrics: RouterMetrics;
  log: Logger;
  queueMax?: number;
}

export function writerConfig(p: CompiledPolicy): WriterConfig {
  return { request_log: p.doc.request_log, pricing: p.doc.pricing };
}

export class RequestLog implements RequestSink {
  readonly path: string;
  readonly #policy: () => CompiledPolicy;
  readonly #metrics: RouterMetrics;
  readonly #log: Logger;
  readonly #queueMax: number;
  readonly #workerData: WorkerData;
  #worker: Worker | null = null;
  readonly #subscribers = new Set<(row: RequestRow) => void>();
  readonly #enders = new Map<(row: RequestRow) => void, () => void>();
  #queue: WireRow[] = [];
  #queueBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #atWorker = 0;
  /** Rows are due but wait because the worker holds as many batches as it may: the next ack posts them. */
  #held = false;
  #seq = 0;
  #configHash: string;
  #closing: Promise<void> | null = null;
  #state: LogStateChange = { ok: false, level: 'info', message: 'opening' };
  #drained: Array<() => void> = [];
  readonly #flushBound = this.flush.bind(this);

  constructor(opts: RequestLogOptions) {
    this.path = opts.path;
    this.#policy = opts.policy;
    this.#metrics = opts.metrics;
    this.#log = opts.log;
    this.#queueMax = opts.queueMax ?? QUEUE_MAX;
    const policy = opts.policy();
    this.#configHash = policy.hash;
    this.#workerData = { path: opts.path, cfg: writerConfig(policy) };
    // A router whose policy turns the log off never starts the worker (~30 MB).
    if (policy.doc.request_log.enabled) this.#spawn();
    this.#metrics.requestLogUp.set(0);
  }

  #spawn(): Worker {
    if (this.#worker) return this.#worker;
    const worker = spawnLogWorker(this.#workerData);
    worker.on('message', (m: FromWorker) => this.#onMessage(m));
    worker.on('error', (err) => {
      this.#log.error({ err }, 'request log worker failed; requests are still routed but no longer logged to requests.db');
      this.#metrics.requestLogUp.set(0);
    });
    // The worker must not keep a finished process alive; close() waits for it explicitly.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  /** Whether requests.db is being written, and the last state message. */
  get state(): LogStateChange {
    return this.#state;
  }

  write(record: RequestRecord): void {
    const cfg = this.#policy().doc.request_log;
    if (this.#closing || !cfg.enabled) return;
    if (record.payload) this.#queueBytes += cutPayload(record, cfg.payload_max_bytes);
    const q = this.#queue;
    q.push(wireRow(record));
    while (q.length > this.#queueMax || (this.#queueBytes > QUEUE_PAYLOAD_BYTES && q.length > 1)) {
      this.#queueBytes -= payloadBytes(q.shift()!);
      this.#metrics.requestLogDropped.inc({ reason: 'queue_full' });
    }
    if (q.length >= BATCH_MAX) return this.flush();
    if (this.#timer === undefined) this.#timer = setTimeout(this.#flushBound, FLUSH_MS);
  }

  /** Hands queued rows to the worker, unless it already holds as many batches as it may. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#queue.length > 0 && this.#atWorker < MAX_BATCHES_AT_WORKER) this.#post();
    this.#metrics.requestLogQueued.set(this.#queue.length);
    this.#held = this.#queue.length > 0;
    if (this.#held) return; // the next ack flushes again
    this.#settleIfDrained();
  }

  #post(): void {
    const policy = this.#policy();
    if (policy.hash !== this.#configHash) {
      this.#configHash = policy.hash;
      this.#send({ t: 'config', cfg: writerConfig(policy) });
    }
    const records = this.#queue.length <= BATCH_MAX ? this.#queue : this.#queue.slice(0, BATCH_MAX);
    this.#queue = records === this.#queue ? [] : this.#queue.slice(BATCH_MAX);
    if (this.#queueBytes > 0) for (const r of records) this.#queueBytes -= payloadBytes(r);
    // Held while it has rows: a process that ends must not lose them (close() says when).
    if (this.#atWorker++ === 0) this.#spawn().ref();
    this.#send({ t: 'batch', seq: ++this.#seq, rows: records });
  }

  #send(m: ToWorker): void {
    this.#spawn().postMessage(m);
  }

  #onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'ack':
        if (--this.#atWorker === 0) this.#worker?.unref();
        if (m.written > 0) this.#metrics.requestLogWritten.inc(m.written);
        if (m.dropped > 0) this.#metrics.requestLogDropped.inc({ reason: 'write_failed' }, m.dropped);
        // Rows that came in while the worker wrote wait for their own timer (or a full batch):
        // posting them on every ack would turn the ~100 ms batches into a ping-pong of small
        // ones, each paying the hand-over and a transaction of its own.
        if (this.#held || this.#queue.length >= BATCH_MAX || (this.#drained.length > 0 && this.#queue.length > 0)) this.flush();
        else this.#settleIfDrained();
        return;
      case 'state':
        this.#state = m.change;
        if (m.change.ok) this.#metrics.requestLogUp.set(1);
        else this.#metrics.requestLogUp.set(0);
        this.#log[m.change.level]({ request_log: this.path, code: m.change.code }, m.change.message);
        return;
      case 'rows':
        for (const row of m.rows) for (const fn of this.#subscribers) fn(row);
        return;
      case 'closed':
        return;
    }
  }

  #settleIfDrained(): void {
    if (this.#queue.length > 0 || this.#atWorker > 0) return;
    const waiting = this.#drained;
    this.#drained = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves once every row queued so far has been written (or dropped) by the worker. */
  drained(): Promise<void> {
    this.flush();
    if (this.#queue.length === 0 && this.#atWorker === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** The live feed: `fn` gets every finished request's row; `end` is called at shutdown. Returns the unsubscribe. */
  subscribe(fn: (row: RequestRow) => void, end: () => void = () => {}): () => void {
    this.#subscribers.add(fn);
    this.#enders.set(fn, end);
    if (this.#subscribers.size === 1) this.#send({ t: 'tail', on: true });
    return () => {
      this.#enders.delete(fn);
      if (this.#subscribers.delete(fn) && this.#subscribers.size === 0 && !this.#closing) this.#send({ t: 'tail', on: false });
    };
  }

  /** Ends every live feed (shutdown: open feeds would hold the server open). */
  endFeeds(): void {
    const enders = [...this.#enders.values()];
    this.#enders.clear();
    this.#subscribers.clear();
    for (const end of enders) end();
  }

  /** Writes what is queued, then closes the database and ends the worker (shutdown). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearTimeout(this.#timer);
    const worker = this.#worker;
    if (!worker) {
      this.endFeeds();
      return;
    }
    const done = new Promise<void>((resolve) => {
      const onMessage = (m: FromWorker) => {
        if (m.t === 'closed') resolve();
      };
      worker.on('message', onMessage);
      worker.once('exit', () => resolve());
    });
    // Everything queued goes now, past the usual two-batch limit: the worker takes them in order.
    while (this.#queue.length > 0) this.#post();
    this.#send({ t: 'close' });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
    await Promise.race([done, timeout]);
    clearTimeout(timer);
    this.endFeeds();
    await worker.terminate();
  }
}

/**
 * Bodies are cut to one character past the cap before they are queued (the worker cuts exactly
 * and marks the cut), so a 32 MB request never sits in the queue or crosses to the worker whole.
 */
function cutPayload(r: RequestRecord, max: number): number {
  const p = r.payload!;
  if (p.request.length > max) p.request = p.request.slice(0, max + 1);
  if (p.response !== null && p.response.length > max) p.response = p.response.slice(0, max + 1);
  return p.request.length + (p.response?.length ?? 0);
}

function payloadBytes(row: WireRow): number {
  const p = row[W.has_payload];
  return typeof p === 'number' ? 0 : p.request.length + (p.response?.length ?? 0);
}

/**
 * The worker runs worker.js from the build, or worker.ts from the sources through tsx's loader
 * (registered inside the worker: a loader registered on the main thread does not reach it).
 */
function spawnLogWorker(data: WorkerData): Worker {
  const resourceLimits = { maxYoungGenerationSizeMb: LOG_WORKER_YOUNG_GENERATION_MB };
  if (RUNNING_BUILT) return new Worker(new URL('./worker.js', import.meta.url), { workerData: data, resourceLimits });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  // Not the parent's --import of tsx (registered above instead); its --cpu-prof flags, so a profile covers the worker too.
  return new Worker(boot, { eval: true, workerData: data, resourceLimits, execArgv: process.execArgv.filter((a) => a.startsWith('--cpu-prof')) });
}
