// Host telemetry: memory and CPU from node:os; GPU figures from nvidia-smi through
// systeminformation on a worker thread, only where nvidia-smi exists. The GPU test runs the
// real systeminformation against stand-in `lspci` and `nvidia-smi` executables on PATH.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { HostTelemetry, nvidiaSmiOnPath } from '../../router/obs/host.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-host-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(dir: string, name: string, body: string): void {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

const LINUX = process.platform === 'linux' ? false : 'GPU sampling is gated on nvidia-smi on Linux only';

describe('nvidiaSmiOnPath', () => {
  test('finds an executable nvidia-smi in any PATH directory, and nothing else', (t) => {
    const empty = tempDir(t);
    const withIt = tempDir(t);
    const notExecutable = tempDir(t);
    script(withIt, 'nvidia-smi', 'exit 0');
    writeFileSync(join(notExecutable, 'nvidia-smi'), 'not a program');
    chmodSync(join(notExecutable, 'nvidia-smi'), 0o644);
    assert.equal(nvidiaSmiOnPath([empty, withIt].join(delimiter)), true);
    assert.equal(nvidiaSmiOnPath([empty, notExecutable].join(delimiter)), false);
    assert.equal(nvidiaSmiOnPath(empty), false);
    assert.equal(nvidiaSmiOnPath(''), false);
    assert.equal(nvidiaSmiOnPath(undefined), false);
  });
});

describe('HostTelemetry', () => {
  test('without nvidia-smi: memory and CPU from the OS, no GPU sampling', { skip: LINUX }, async (t) => {
    const host = new HostTelemetry(new Registry(), { PATH: tempDir(t) });
    t.after(() => host.stop());
    assert.equal(host.samplesGpus, false);
    const s = await host.refresh();
    assert.match(s.at ?? '', /^\d{4}-\d\d-\d\dT/);
    assert.ok(s.memory_total_bytes! > 0);
    assert.ok(s.memory_used_bytes! > 0 && s.memory_used_bytes! <= s.memory_total_bytes!);
    assert.equal(typeof s.cpu_load_percent, 'number');
    assert.deepEqual(s.gpus, []);
  });

  test('with nvidia-smi: each GPU it reports, matched to its PCI controller; found when installed after start', { skip: LINUX }, async (t) => {
    const bin = tempDir(t);
    // PATH holds only the stand-ins: a real nvidia-smi elsewhere must not be found first.
    const host = new HostTelemetry(new Registry(), { PATH: bin });
    t.after(() => host.stop());
    assert.equal(host.samplesGpus, false);
    assert.deepEqual((await host.refresh()).gpus, []);

    script(bin, 'lspci', "printf '01:00.0 VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090] (rev a1)\\n\\tSubsystem: NVIDIA Corporation Device 147d\\n'");
    script(bin, 'nvidia-smi', "echo '535.104.05, 0x147D10DE, NVIDIA GeForce RTX 3090, 00000000:01:00.0, 30, 24576, 1024, 23552, 42, 10, 55, N/A, 120.50, 350.00, 1395, 9751'");
    const s = await host.refresh();
    assert.equal(host.samplesGpus, true);
    assert.deepEqual(s.gpus, [{ index: 0, model: 'GA102 [GeForce RTX 3090]', utilization_percent: 42, memory_used_mb: 1024, memory_total_mb: 24576, temperature_c: 55 }]);
  });
});
