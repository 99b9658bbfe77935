// The router host's own telemetry (CPU, memory, GPUs where present). Sampled in the
// background, so a scrape only ever reads the last sample.
//
// Nothing here may stop the event loop: every request and stream the router serves waits
// while it is stopped. systeminformation's si.graphics() runs nvidia-smi through execFileSync
// (and lspci through exec): on a host with an NVIDIA GPU the loop stood still for the whole
// nvidia-smi run (309 ms with a 0.3 s stand-in; the real one can take a second), so it runs on
// a worker thread (≤ 3.4 ms stall in the same test). That worker, and systeminformation
// itself, hold ~10 MB of RSS each, so neither is loaded on a Linux host without nvidia-smi,
// where si.graphics() reports no GPU figures at all. CPU load and memory come from node:os,
// computed as si.currentLoad() and si.mem() compute them on Linux (si.currentLoad() runs
// `cat /proc/stat | grep cpu` through execSync, 2.5-5 ms here).
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, freemem, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import { registerHostGauges } from './metrics.ts';

interface GraphicsController {
  model: string;
  utilizationGpu?: number | undefined;
  memoryUsed?: number | undefined;
  memoryTotal?: number | undefined;
  temperatureGpu?: number | undefined;
}

// Plain CommonJS so the worker needs no TypeScript loader; systeminformation is resolved
// from here and handed over by path.
const GRAPHICS_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const si = require(workerData.si);
parentPort.on('message', () => {
  si.graphics().then(
    (g) => parentPort.postMessage(g.controllers.map((c) => ({ model: c.model, utilizationGpu: c.utilizationGpu, memoryUsed: c.memoryUsed, memoryTotal: c.memoryTotal, temperatureGpu: c.temperatureGpu }))),
    () => parentPort.postMessage([]),
  );
});
`;
const GRAPHICS_TIMEOUT_MS = 10_000;

export interface HostSample {
  at: string | null;
  cpu_load_percent: number | null;
  memory_total_bytes: number | null;
  memory_used_bytes: number | null;
  gpus: Array<{ index: number; model: string; utilization_percent: number | null; memory_used_mb: number | null; memory_total_mb: number | null; temperature_c: number | null }>;
}

export class HostTelemetry {
  sample: HostSample = { at: null, cpu_load_percent: null, memory_total_bytes: null, memory_used_bytes: null, gpus: [] };
  #timer: NodeJS.Timeout | null = null;
  #busy = false;
  #cpuTicks: { busy: number; total: number } = { busy: 0, total: 0 };
  #worker: Worker | null = null;
  /** Whether GPUs are sampled (si.graphics() on the worker): once nvidia-smi is found, for good. */
  #gpus: boolean;
  readonly #env: NodeJS.ProcessEnv;

  /** `env`: the environment nvidia-smi is looked for in (PATH) and run with. */
  constructor(registry: Registry, env: NodeJS.ProcessEnv = process.env) {
    registerHostGauges(registry, () => this.sample);
    this.#env = env;
    this.#gpus = this.#findsGpus();
  }

  /** Whether GPU figures are sampled (false on a Linux host without nvidia-smi, so far). */
  get samplesGpus(): boolean {
    return this.#gpus;
  }

  /** Looked for at every sample until found: a driver installed after start is picked up (a few stat calls every 15 s). */
  #findsGpus(): boolean {
    return process.platform !== 'linux' || nvidiaSmiOnPath(this.#env.PATH);
  }

  async refresh(): Promise<HostSample> {
    if (this.#busy) return this.sample;
    this.#busy = true;
    try {
      this.#gpus ||= this.#findsGpus();
      const controllers = this.#gpus ? await this.#graphics() : [];
      // freemem() is MemAvailable on Linux: in use = total - available, as si.mem()'s `active`.
      const total = totalmem();
      this.sample = {
        at: new Date().toISOString(),
        cpu_load_percent: Math.round(this.#cpuLoad() * 10) / 10,
        memory_total_bytes: total,
        memory_used_bytes: total - freemem(),
        gpus: controllers
          .filter((c) => c.utilizationGpu !== undefined || c.memoryTotal !== undefined)
          .map((c, index) => ({ index, model: c.model, utilization_percent: c.utilizationGpu ?? null, memory_used_mb: c.memoryUsed ?? null, memory_total_mb: c.memoryTotal ?? null, temperature_c: c.temperatureGpu ?? null })),
      };
    } finally {
      this.#busy = false;
    }
    return this.sample;
  }

  /** si.graphics() on the worker thread (started on first use); [] when it fails or hangs. */
  #graphics(): Promise<GraphicsController[]> {
    const worker = (this.#worker ??= this.#startWorker());
    return new Promise((resolve) => {
      const done = (controllers: GraphicsController[]) => {
        clearTimeout(timer);
        worker.off('message', done);
        worker.off('exit', onExit);
        resolve(controllers);
      };
      const onExit = () => done([]);
      const timer = setTimeout(() => {
        // A hung nvidia-smi: drop this worker; the next sample starts a fresh one.
        if (this.#worker === worker) this.#worker = null;
        void worker.terminate();
        done([]);
      }, GRAPHICS_TIMEOUT_MS);
      worker.on('message', done);
      worker.once('exit', onExit);
      worker.postMessage('sample');
    });
  }

  #startWorker(): Worker {
    const worker = new Worker(GRAPHICS_WORKER, { eval: true, env: this.#env, workerData: { si: createRequire(import.meta.url).resolve('systeminformation') } });
    worker.unref();
    worker.once('error', () => undefined);
    worker.once('exit', () => {
      if (this.#worker === worker) this.#worker = null;
    });
    return worker;
  }

  /**
   * Busy share of all cores since the previous sample (since boot for the first), from
   * os.cpus() as si.currentLoad() computes it (not si.currentLoad() itself: see the top).
   */
  #cpuLoad(): number {
    let busy = 0;
    let total = 0;
    for (const { times } of cpus()) {
      busy += times.user + times.nice + times.sys + times.irq;
      total += times.user + times.nice + times.sys + times.irq + times.idle;
    }
    const prev = this.#cpuTicks;
    this.#cpuTicks = { busy, total };
    return total > prev.total ? ((busy - prev.busy) / (total - prev.total)) * 100 : 0;
  }

  start(intervalMs = 15_000): void {
    if (this.#timer) return;
    void this.refresh().catch(() => undefined);
    this.#timer = setInterval(() => void this.refresh().catch(() => undefined), intervalMs).unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    void this.#worker?.terminate();
    this.#worker = null;
  }
}

/** Whether an executable `nvidia-smi` is in one of PATH's directories (where si.graphics() runs it from on Linux). */
export function nvidiaSmiOnPath(path: string | undefined): boolean {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'nvidia-smi'), constants.X_OK);
      return true;
    } catch {
      // Not here.
    }
  }
  return false;
}
