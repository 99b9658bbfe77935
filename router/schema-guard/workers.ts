// A small, bounded pool of schema worker threads. Compiling a client's schema and checking a
// model's output against it run here, never on the event loop, each with a time budget: a job
// past its budget has its worker terminated (V8 stops the running code wherever it is) and is
// answered `timeout`; the next job starts a fresh worker. A budget starts when a started and
// warmed-up worker takes the job, so starting a worker is never charged to a client. Jobs wait
// FIFO when every worker is busy, at most MAX_QUEUED of them for at most MAX_WAIT_MS (then `busy`).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { MAX_CACHED_PER_WORKER, SCHEMA_WORKER, type WorkerJob, type WorkerReply } from './worker-source.ts';

export const MAX_QUEUED = 256;
export const MAX_WAIT_MS = 10_000;
/** Heap of one worker: a schema within the bounds compiles in a few MB. */
const WORKER_HEAP_MB = 128;

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** `crashed`: the worker died on this job (out of memory); `unavailable`: no worker could start. */
export type JobOutcome = WithoutId<WorkerReply> | { kind: 'timeout' } | { kind: 'busy' } | { kind: 'crashed'; message: string } | { kind: 'unavailable'; message: string };

export interface JobBudget {
  /** Budget when the worker has the schema compiled already. */
  runMs: number;
  /** Added when it has to compile it first. */
  compileMs: number;
}

interface Slot {
  worker: Worker;
  /** Schema keys this worker has compiled (mirrors its cache, most recent last). */
  keys: Set<string>;
  job: Pending | null;
  /** Set once the worker has loaded ajv and re2js and compiled its warm-up schema. */
  ready: boolean;
}

interface Pending {
  job: WorkerJob;
  budget: JobBudget;
  resolve: (o: JobOutcome) => void;
  /** Runs while the job waits, then while it runs. */
  timer: NodeJS.Timeout | null;
}

let nextId = 1;
let paths: { ajv: string; re2js: string } | undefined;

function modulePaths(): { ajv: string; re2js: string } {
  const require = createRequire(import.meta.url);
  return (paths ??= { ajv: require.resolve('ajv'), re2js: require.resolve('re2js') });
}

export interface PoolStats {
  workers: number;
  busy: number;
  queued: number;
  /** Workers terminated for running past a budget, since start. */
  terminated: number;
}

export class SchemaWorkers {
  #slots: Slot[] = [];
  #queue: Pending[] = [];
  #terminated = 0;
  #closed = false;
  #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** The pool's size follows the policy (a reload may change it); extra idle workers are stopped. */
  resize(max: number): void {
    this.#max = max;
    for (const s of [...this.#slots]) if (this.#slots.length > this.#max && s.ready && s.job === null) void this.#drop(s);
    this.#pump();
  }

  stats(): PoolStats {
    return { workers: this.#slots.length, busy: this.#slots.filter((s) => s.job !== null).length, queued: this.#queue.length, terminated: this.#terminated };
  }

  run(job: Omit<WorkerJob, 'id'>, budget: JobBudget): Promise<JobOutcome> {
    if (this.#closed) return Promise.resolve({ kind: 'busy' });
    if (this.#queue.length >= MAX_QUEUED) return Promise.resolve({ kind: 'busy' });
    return new Promise<JobOutcome>((resolve) => {
      const p: Pending = { job: { ...job, id: nextId++ }, budget, resolve, timer: null };
      p.timer = setTimeout(() => {
        const at = this.#queue.indexOf(p);
        if (at !== -1) this.#queue.splice(at, 1);
        resolve({ kind: 'busy' });
      }, MAX_WAIT_MS);
      this.#queue.push(p);
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) {
      clearTimeout(p.timer!);
      p.resolve({ kind: 'busy' });
    }
    await Promise.all([...this.#slots].map((s) => this.#drop(s)));
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      const idle = this.#slots.filter((s) => s.ready && s.job === null);
      const slot = idle.find((s) => s.keys.has(next.job.key)) ?? idle[0];
      if (!slot) {
        // Start one more worker while fewer are starting than jobs wait; it pumps when ready.
        const starting = this.#slots.filter((s) => !s.ready).length;
        if (this.#slots.length < this.#max && starting < this.#queue.length) {
          try {
            this.#spawn();
          } catch (err) {
            this.#failQueue(`the schema worker could not start (${(err as Error).message})`);
          }
        }
        return;
      }
      this.#queue.shift();
      this.#start(slot, next);
    }
  }

  #start(slot: Slot, p: Pending): void {
    clearTimeout(p.timer!);
    slot.job = p;
    const budgetMs = p.budget.runMs + (slot.keys.has(p.job.key) ? 0 : p.budget.compileMs);
    p.timer = setTimeout(() => {
      if (slot.job !== p) return;
      this.#terminated++;
      this.#finish(slot, { kind: 'timeout' });
      void this.#drop(slot);
      this.#pump();
    }, budgetMs);
    slot.worker.postMessage(p.job);
  }

  #finish(slot: Slot, outcome: JobOutcome): void {
    const p = slot.job;
    if (!p) return;
    clearTimeout(p.timer!);
    slot.job = null;
    if (outcome.kind === 'compiled' || outcome.kind === 'valid' || outcome.kind === 'invalid_json' || outcome.kind === 'schema_mismatch') {
      slot.keys.delete(p.job.key);
      slot.keys.add(p.job.key);
      if (slot.keys.size > MAX_CACHED_PER_WORKER) slot.keys.delete(slot.keys.values().next().value!);
    }
    p.resolve(outcome);
  }

  #spawn(): Slot {
    const worker = new Worker(SCHEMA_WORKER, { eval: true, workerData: modulePaths(), resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    worker.unref();
    const slot: Slot = { worker, keys: new Set(), job: null, ready: false };
    worker.on('message', (reply: WorkerReply) => {
      if (reply.kind === 'ready') {
        slot.ready = true;
        this.#pump();
        return;
      }
      if (slot.job?.job.id !== reply.id) return;
      const { id: _id, ...outcome } = reply;
      this.#finish(slot, outcome as JobOutcome);
      if (this.#slots.length > this.#max) void this.#drop(slot);
      this.#pump();
    });
    // Out of memory, or any other death: the job in hand fails, the slot is gone.
    let death = 'the schema worker exited';
    worker.on('error', (err) => {
      death = err.message;
      this.#finish(slot, { kind: 'crashed', message: err.message });
    });
    worker.once('exit', () => {
      this.#finish(slot, { kind: 'crashed', message: death });
      this.#remove(slot);
      // One that died starting up would die again: the waiting jobs fail rather than loop.
      if (!slot.ready && !this.#closed) this.#failQueue(`the schema worker could not start (${death})`);
      this.#pump();
    });
    this.#slots.push(slot);
    return slot;
  }

  #failQueue(message: string): void {
    for (const p of this.#queue.splice(0)) {
      clearTimeout(p.timer!);
      p.resolve({ kind: 'unavailable', message });
    }
  }

  #remove(slot: Slot): void {
    const at = this.#slots.indexOf(slot);
    if (at !== -1) this.#slots.splice(at, 1);
  }

  async #drop(slot: Slot): Promise<void> {
    this.#remove(slot);
    await slot.worker.terminate();
  }
}
