// The router host's own telemetry (CPU, memory, GPUs where present) via systeminformation.
// Sampled in the background: si.graphics() shells out to nvidia-smi and can take a second,
// so a scrape only ever reads the last sample.
//
// Nothing here may stop the event loop: every request and stream the router serves waits
// while it is stopped. On Linux si.graphics() runs nvidia-smi through execFileSync (and
// dmidecode through execSync): on a host with an NVIDIA GPU the loop stood still for the whole
// nvidia-smi run (309 ms with a 0.3 s stand-in; the real one can take a second), so it runs on
// a worker thread (≤ 3.4 ms stall in the same test; the worker holds ~10 MB of RSS). si.currentLoad() runs `cat /proc/stat |
// grep cpu` through execSync (2.5-5 ms here), so the load is computed from os.cpus() the way
// it does.
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import si from 'systeminformation';
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

  constructor(registry: Registry) {
    registerHostGauges(registry, () => this.sample);
  }

  async refresh(): Promise<HostSample> {
    if (this.#busy) return this.sample;
    this.#busy = true;
    try {
      const [mem, controllers] = await Promise.all([si.mem(), this.#graphics()]);
      this.sample = {
        at: new Date().toISOString(),
        cpu_load_percent: Math.round(this.#cpuLoad() * 10) / 10,
        memory_total_bytes: mem.total,
        memory_used_bytes: mem.active,
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
    const worker = new Worker(GRAPHICS_WORKER, { eval: true, workerData: { si: createRequire(import.meta.url).resolve('systeminformation') } });
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
