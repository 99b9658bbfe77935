// `npx tsx bench/keys.ts`: CPU per request of the key check and limits (SPEC §12), side by side
// with keys off. In process, on the router's own code: the data-plane gate (header, SHA-256,
// lookup, expiry, endpoint glob, rpm window, in-flight place), the handler's model glob and
// token reservation, the settlement at the end and the release when the response closes
// (client metric included), and the batched usage write to keys.db (amortised). No network:
// what is measured is what keys add, not the noise of a loopback round trip.
//
//   off   auth.mode open, no key presented: the gate returns at once (today's traffic)
//   on    auth.mode keys, a key with models/endpoints globs, rpm, max_in_flight and
//         monthly_tokens, presented as Bearer
// Rounds are interleaved (off, on, on, off, ...); each figure is the median µs/request of CPU
// time (process.cpuUsage, user + system). Flags: --rounds N (5), --n N (requests per round, 50000).
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { grantOf, keyGate } from '../router/http/key-gate.ts';
import { KeyService } from '../router/keys/service.ts';
import { RouterMetrics } from '../router/obs/metrics.ts';
import { parsePolicyText } from '../router/policy/load.ts';
import type { RouteStates } from '../router/upstream/route-state.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, n: { type: 'string', default: '50000' } } });
const ROUNDS = Math.max(1, Math.min(20, Number(values.rounds) || 5));
const N = Math.max(1000, Math.min(1_000_000, Number(values.n) || 50_000));
const PATH = '/v1/chat/completions';

function policy(mode: 'open' | 'keys') {
  const doc = loadYaml(readFileSync(new URL('../routing_policy.yaml', import.meta.url), 'utf8')) as any;
  doc.auth = { mode };
  return parsePolicyText(dumpYaml(doc), `bench-${mode}`);
}

/** What the gate touches of a response: 'close', writableFinished, statusCode. */
class FakeResponse extends EventEmitter {
  writableFinished = true;
  statusCode = 200;
}

function setup(mode: 'open' | 'keys') {
  const dir = mkdtempSync(join(tmpdir(), 'hr-bench-keys-'));
  const compiled = policy(mode);
  const metrics = new RouterMetrics(() => ({ all: () => [] }) as unknown as RouteStates, { processMetrics: false });
  const keys = new KeyService({ dataDir: dir, policy: () => compiled, metrics, flushMs: 3_600_000 });
  let headers: Record<string, string> = {};
  if (mode === 'keys') {
    const k = keys.create({ name: 'bench-app', models: ['homelab/*', 'qwen*'], endpoints: ['/v1/chat/*', '/v1/embeddings'], rpm: N * (ROUNDS + 2), max_in_flight: 64, monthly_tokens: 1e15 });
    headers = { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' };
  } else headers = { 'content-type': 'application/json' };
  return { keys, headers, close: () => (keys.close(), rmSync(dir, { recursive: true, force: true })) };
}

/** One request's key work, as the data plane and a chat handler do it. */
function oneRequest(keys: KeyService, headers: Record<string, string>): void {
  const req = { headers } as unknown as IncomingMessage;
  const res = new FakeResponse();
  const pass = keyGate(req, res as unknown as ServerResponse, PATH, keys);
  if (pass !== true) throw new Error('refused');
  const grant = grantOf(req);
  if (grant) {
    keys.checkModel(grant, 'homelab/code', { prompt: 250, answer: 512 });
    keys.finish(grant, { prompt: 250, completion: 300 }, true);
  }
  res.emit('close');
}

function round(s: ReturnType<typeof setup>): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) oneRequest(s.keys, s.headers);
  s.keys.flush();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / N;
}

const off = setup('open');
const on = setup('keys');
// Warm-up: JIT, the month's first usage read, the first batch write.
round(off);
round(on);
const results: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (let r = 0; r < ROUNDS; r++) {
  const order: Array<'off' | 'on'> = r % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
  for (const which of order) results[which].push(round(which === 'off' ? off : on));
}
off.close();
on.close();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mOff = median(results.off);
const mOn = median(results.on);
console.log(`key check + limits, CPU per request (median of ${ROUNDS} rounds × ${N} requests, Node ${process.version})`);
console.log(`  keys off (open, no key)   ${mOff.toFixed(2)} µs`);
console.log(`  keys on  (all limits)     ${mOn.toFixed(2)} µs`);
console.log(`  added by keys             ${(mOn - mOff).toFixed(2)} µs   (budget: 10 µs)`);
console.log(`  rounds off: ${results.off.map((x) => x.toFixed(2)).join(' ')}  on: ${results.on.map((x) => x.toFixed(2)).join(' ')}`);
