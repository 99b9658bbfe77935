// Classifier micro-benchmark: what the hot path spends on one request's prompt before any
// upstream call, with the real policy (routing_policy.yaml, every bucket's vocabulary).
//
//   facts     requestFacts(): character count, scoped texts, code / question signals
//   classify  Classifier.classify(): the term-index scan and scoring
//   total     both, which is what a request pays (the budget: 2 KB < 50 µs, 500 KB < 5 ms)
//
// The prompts are the held-out routing fixtures (real prompts in several languages, code and
// prose) joined and repeated to 2 KB, 50 KB and 500 KB, so the term density is realistic.
//
// Usage: tsx bench/classifier.ts [--policy routing_policy.yaml] [--json]
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { requestFacts, type ChatBody, type RequestFacts } from '../router/classify/request-facts.ts';
import { loadPolicyFile } from '../router/policy/load.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export const SIZES = [
  { label: '2 KB', chars: 2 * 1024 },
  { label: '50 KB', chars: 50 * 1024 },
  { label: '500 KB', chars: 500 * 1024 },
] as const;

export interface ClassifierResult {
  label: string;
  chars: number;
  bucket: string;
  /** Median CPU µs per call over the timed batches. */
  factsUs: number;
  classifyUs: number;
  totalUs: number;
  /** 95th percentile of the per-batch CPU mean of `total`, in µs. */
  totalP95Us: number;
  /** Median wall-clock µs per call of `total` (inflated when other processes compete). */
  totalWallUs: number;
}

/** Real prompts, joined and repeated (or cut) to exactly `chars` characters. */
export function promptOf(chars: number): string {
  const corpus = readFileSync(join(ROOT, 'test/fixtures/routing-heldout.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const msgs = (JSON.parse(l) as { request: ChatBody }).request.messages;
      return msgs.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
    })
    .join('\n\n');
  let text = corpus;
  while (text.length < chars) text += '\n\n' + corpus;
  // Through JSON, as a request's content arrives: a flat string, not a rope of concatenations
  // (V8 reads a rope's characters several times slower, which would skew every number here).
  return JSON.parse(JSON.stringify(text.slice(0, chars))) as string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!;
}

/**
 * µs per call of `fn`, per batch of ~`batchMs`: CPU time (process.cpuUsage, user + system) and
 * wall time. CPU time is what the budget is judged on: it is the work the call costs, and it
 * stays true when other processes share the machine; on an idle machine the two agree.
 */
function time(fn: () => void, batches: number, batchMs: number): { cpu: number[]; wall: number[] } {
  const t0 = process.hrtime.bigint();
  fn();
  const once = Math.max(1e-3, Number(process.hrtime.bigint() - t0) / 1e6);
  const perBatch = Math.max(1, Math.round(batchMs / once));
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let b = 0; b < batches; b++) {
    const c0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) fn();
    const w = Number(process.hrtime.bigint() - w0) / 1e3;
    const c = process.cpuUsage(c0);
    wall.push(w / perBatch);
    cpu.push((c.user + c.system) / perBatch);
  }
  return { cpu, wall };
}

export function runClassifierBench(policyPath = join(ROOT, 'routing_policy.yaml'), opts: { batches?: number; batchMs?: number } = {}): ClassifierResult[] {
  const policy = loadPolicyFile(policyPath);
  const { scope, lookback_turns } = policy.policy.classifier;
  const batches = opts.batches ?? 15;
  const batchMs = opts.batchMs ?? 40;
  const results: ClassifierResult[] = [];
  for (const size of SIZES) {
    const body: ChatBody = { model: 'homelab/auto', messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: promptOf(size.chars) }] };
    let facts: RequestFacts = requestFacts(body, scope, lookback_turns);
    let bucket = '';
    // Warm up the JIT on this size before timing.
    time(() => policy.classifier.classify(requestFacts(body, scope, lookback_turns)), 3, batchMs);
    const factsUs = time(() => {
      facts = requestFacts(body, scope, lookback_turns);
    }, batches, batchMs);
    const classifyUs = time(() => {
      bucket = policy.classifier.classify(facts).bucket;
    }, batches, batchMs);
    const totalUs = time(() => {
      bucket = policy.classifier.classify(requestFacts(body, scope, lookback_turns)).bucket;
    }, batches, batchMs);
    results.push({ label: size.label, chars: size.chars, bucket, factsUs: median(factsUs.cpu), classifyUs: median(classifyUs.cpu), totalUs: median(totalUs.cpu), totalP95Us: p95(totalUs.cpu), totalWallUs: median(totalUs.wall) });
  }
  return results;
}

export function formatUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`;
}

function main(): void {
  const { values } = parseArgs({ options: { policy: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const results = runClassifierBench(values.policy);
  if (values.json) {
    console.log(JSON.stringify(results));
    return;
  }
  console.log('CPU time per call (median of batches); wall = wall-clock median of total');
  console.log('prompt    facts       classify    total       total p95   wall        bucket');
  for (const r of results) {
    console.log(`${r.label.padEnd(9)} ${formatUs(r.factsUs).padEnd(11)} ${formatUs(r.classifyUs).padEnd(11)} ${formatUs(r.totalUs).padEnd(11)} ${formatUs(r.totalP95Us).padEnd(11)} ${formatUs(r.totalWallUs).padEnd(11)} ${r.bucket}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
