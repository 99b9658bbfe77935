// The router host's own telemetry (CPU, memory, GPUs where present) via systeminformation.
// Sampled in the background: si.graphics() shells out to nvidia-smi and can take a second,
// so a scrape only ever reads the last sample.
import si from 'systeminformation';
import { Gauge, type Registry } from 'prom-client';

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

  constructor(registry: Registry) {
    const self = this;
    new Gauge({ name: 'homelab_router_host_cpu_load_percent', help: 'CPU load of the router host.', registers: [registry], collect() { if (self.sample.cpu_load_percent !== null) this.set(self.sample.cpu_load_percent); } });
    new Gauge({ name: 'homelab_router_host_memory_used_bytes', help: 'Memory in use on the router host.', registers: [registry], collect() { if (self.sample.memory_used_bytes !== null) this.set(self.sample.memory_used_bytes); } });
    new Gauge({ name: 'homelab_router_host_memory_total_bytes', help: 'Memory of the router host.', registers: [registry], collect() { if (self.sample.memory_total_bytes !== null) this.set(self.sample.memory_total_bytes); } });
    new Gauge({
      name: 'homelab_router_host_gpu_utilization_percent', help: 'GPU utilisation on the router host.', labelNames: ['gpu'] as const, registers: [registry],
      collect() { this.reset(); for (const g of self.sample.gpus) if (g.utilization_percent !== null) this.set({ gpu: String(g.index) }, g.utilization_percent); },
    });
  }

  async refresh(): Promise<HostSample> {
    if (this.#busy) return this.sample;
    this.#busy = true;
    try {
      const [load, mem, graphics] = await Promise.all([si.currentLoad(), si.mem(), si.graphics().catch(() => ({ controllers: [] }))]);
      this.sample = {
        at: new Date().toISOString(),
        cpu_load_percent: Math.round(load.currentLoad * 10) / 10,
        memory_total_bytes: mem.total,
        memory_used_bytes: mem.active,
        gpus: graphics.controllers
          .filter((c) => c.utilizationGpu !== undefined || c.memoryTotal !== undefined)
          .map((c, index) => ({ index, model: c.model, utilization_percent: c.utilizationGpu ?? null, memory_used_mb: c.memoryUsed ?? null, memory_total_mb: c.memoryTotal ?? null, temperature_c: c.temperatureGpu ?? null })),
      };
    } finally {
      this.#busy = false;
    }
    return this.sample;
  }

  start(intervalMs = 15_000): void {
    if (this.#timer) return;
    void this.refresh().catch(() => undefined);
    this.#timer = setInterval(() => void this.refresh().catch(() => undefined), intervalMs).unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
