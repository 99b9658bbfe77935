// `node --import tsx bench/hostile-schema.ts`: /healthz latency for one client while others send
// fail-closed requests with hostile JSON Schemas (issue 12 item 1; the target is under 50 ms).
//
// `homelab-router serve` runs as its own process with the shipped policy, every route pointed
// at a simulated upstream on 127.0.0.1 (router/demo/sim-upstream.ts). One client GETs /healthz
// back to back and records each latency; meanwhile ATTACKERS clients each send one request at a
// time, for the phase's duration:
//   idle       no attackers (the baseline)
//   pattern    `^(a+)+$` against the model's "aaa…a!" (30 a's; both the primary's and the
//              escalation's answer), which a backtracking engine takes minutes over
//   compile    a fresh 900-property schema per request (within the default bounds, never
//              cached, so every request compiles one on a worker; 200 prebuilt)
//   props5000  5,000 properties: refused with 400 at fail_closed.max_schema_keywords
//   deep       a 20,000-deep schema (a 0.7 MB body): refused by the body nesting bound
//              (router/http/body.ts) before the body is parsed
//   selfref    {"$ref":"#"}: refused as a $ref cycle
// Bounded: each phase runs PHASE_S seconds; every request targets 127.0.0.1.
// Prints p50 / p99 / max of /healthz per phase, and how many attack requests completed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { startSimUpstream, type SimUpstream } from '../router/demo/sim-upstream.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const { values: flags } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, attackers: { type: 'string', default: '1' } } });
const PHASE_S = Number(flags.seconds);
const ATTACKERS = Number(flags.attackers);

const EVIL = JSON.stringify({ plate: 'a'.repeat(30) + '!' });

function cameraBody(schemaText: string): string {
  return JSON.stringify({
    model: 'homelab/auto',
    messages: [{ role: 'user', content: 'Frigate event: motion on the driveway camera. Answer as JSON.' }],
    response_format: { type: 'json_schema', json_schema: { name: 'plate', schema: '@schema@' } },
  }).replace('"@schema@"', schemaText);
}

let fresh = 0;
const ATTACKS: Record<string, () => string> = {
  pattern: () => cameraBody(JSON.stringify({ type: 'object', properties: { plate: { type: 'string', pattern: '^(a+)+$' } }, required: ['plate'] })),
  compile: () => {
    const props: Record<string, unknown> = {};
    const tag = fresh++;
    for (let i = 0; i < 900; i++) props[`f${tag}_${i}`] = { type: 'string' };
    return cameraBody(JSON.stringify({ type: 'object', properties: props }));
  },
  props5000: () => {
    const props: Record<string, unknown> = {};
    for (let i = 0; i < 5000; i++) props[`f${i}`] = { type: 'string' };
    return cameraBody(JSON.stringify({ type: 'object', properties: props }));
  },
  deep: () => cameraBody('{"type":"object","properties":{"a":'.repeat(20_000) + '{}' + '}}'.repeat(20_000)),
  selfref: () => cameraBody('{"$ref":"#"}'),
};

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const doc = loadYaml(readFileSync(join(REPO, 'routing_policy.yaml'), 'utf8')) as any;
  const sims: SimUpstream[] = [];
  for (const [name, route] of Object.entries<any>(doc.routes)) {
    const sim = await startSimUpstream({ model: route.model, slots: 64 });
    sims.push(sim);
    route.url = sim.url;
    route.slots = 64;
    route.queue = 64;
    if (name === 'ubuntu-4090' || name === 'spark') sim.setFault({ kind: 'reply', content: EVIL });
  }
  doc.server.listen = '127.0.0.1:0';
  const dir = mkdtempSync(join(tmpdir(), 'hr-bench-schema-'));
  const policy = join(dir, 'routing_policy.yaml');
  writeFileSync(policy, dumpYaml(doc));
  const router = spawn(process.execPath, [join(REPO, 'bin/homelab-router.js'), 'serve', '--policy', policy], { env: { ...process.env, HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs') }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  router.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    let base = '';
    for (let i = 0; i < 300 && !base; i++) {
      await new Promise((r) => setTimeout(r, 50));
      base = /"listen":"(http:\/\/[^"]+)"/.exec(out)?.[1] ?? '';
    }
    if (!base) throw new Error(`the router did not start:\n${out}`);
    console.log(`router ${base}; ${ATTACKERS} attackers; ${PHASE_S} s per phase; node ${process.version}`);
    console.log('phase      healthz n   p50 ms   p99 ms   max ms   attacks done (statuses)');
    for (const phase of ['idle', 'pattern', 'compile', 'props5000', 'deep', 'selfref', 'idle']) {
      const until = Date.now() + PHASE_S * 1000;
      const statuses: Record<string, number> = {};
      // Bodies are built before the phase, so the bench's own process does nothing but I/O in it.
      const make = ATTACKS[phase] as (() => string) | undefined;
      const bodies = make ? Array.from({ length: phase === 'compile' ? 200 : 1 }, make) : [];
      let next = 0;
      const attack = make ? () => bodies[next++ % bodies.length]! : undefined;
      const attackers = attack
        ? Array.from({ length: ATTACKERS }, async () => {
            while (Date.now() < until) {
              const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-homelab-bucket': 'camera' }, body: attack(), signal: AbortSignal.timeout(60_000) }).catch(() => null);
              const key = res ? String(res.status) : 'error';
              statuses[key] = (statuses[key] ?? 0) + 1;
              await res?.arrayBuffer().catch(() => undefined);
            }
          })
        : [];
      // Let the attackers' first requests reach the router before measuring.
      if (attack) await new Promise((r) => setTimeout(r, 200));
      const latencies: number[] = [];
      while (Date.now() < until) {
        const t0 = performance.now();
        const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(60_000) });
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
      await Promise.all(attackers);
      latencies.sort((a, b) => a - b);
      const done = Object.values(statuses).reduce((a, b) => a + b, 0);
      console.log(`${phase.padEnd(10)} ${String(latencies.length).padStart(9)} ${quantile(latencies, 0.5).toFixed(2).padStart(8)} ${quantile(latencies, 0.99).toFixed(2).padStart(8)} ${latencies.at(-1)!.toFixed(2).padStart(8)}   ${String(done).padStart(5)} ${JSON.stringify(statuses)}`);
    }
  } finally {
    router.kill('SIGTERM');
    await new Promise((r) => router.once('exit', r));
    await Promise.all(sims.map((s) => s.close()));
  }
}

await main();
