// Routing quality check: runs labelled prompts through the real classifier and decision engine
// (every route healthy, none drained) and reports accuracy and every miss.
//
//   npm run eval:routing -- [--policy routing_policy.yaml] [--file F ...] [--min 95]
//
// Without --file it runs every labelled set it finds: the shared dev sets
// (../shared/eval/routing-dev.jsonl, routing-clients-dev.jsonl; in a checkout without ../shared,
// their copies in test/fixtures, with a message) and the repo's own fixtures.
// Each JSONL line: {"id", "request": <chat completion body>, "expect_routes": [routes], "note"}.
// Exit code 0 unless --min is given and some set's accuracy falls below it (then 1), so CI can gate on it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requestFacts, type ChatBody } from '../router/classify/request-facts.ts';
import { decide } from '../router/decide/engine.ts';
import { loadPolicyFile } from '../router/policy/load.ts';
import type { CompiledPolicy } from '../router/policy/compile.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface EvalCase {
  id: string;
  request: ChatBody;
  expect_routes: string[];
  note?: string;
}

export interface EvalMiss {
  id: string;
  route: string | null;
  bucket: string;
  expected: string[];
  matched: Record<string, string[]>;
  prompt: string;
}

export interface EvalResult {
  total: number;
  correct: number;
  misses: EvalMiss[];
}

export function readCases(path: string): EvalCase[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as EvalCase;
      } catch (err) {
        throw new Error(`${path}:${i + 1}: not JSON (${(err as Error).message})`);
      }
    });
}

/** The text of the last user message, one line, for reports. */
function promptPreview(body: ChatBody, chars: number): string {
  const users = body.messages.filter((m) => m.role === 'user');
  const content = users[users.length - 1]?.content;
  const text = typeof content === 'string' ? content : (content ?? []).map((p) => p.text ?? `[${p.type}]`).join(' ');
  return text.replace(/\s+/g, ' ').slice(0, chars);
}

export function evaluate(policy: CompiledPolicy, cases: EvalCase[]): EvalResult {
  const { scope, lookback_turns } = policy.doc.classifier;
  const allUp = () => ({ healthy: true, drained: false });
  const misses: EvalMiss[] = [];
  for (const c of cases) {
    const d = decide({ facts: requestFacts(c.request, scope, lookback_turns) }, policy, allUp);
    if (d.route !== null && c.expect_routes.includes(d.route)) continue;
    misses.push({ id: c.id, route: d.route, bucket: d.bucket, expected: c.expect_routes, matched: d.matched, prompt: promptPreview(c.request, 80) });
  }
  return { total: cases.length, correct: cases.length - misses.length, misses };
}

export function formatMiss(m: EvalMiss): string {
  const matched = Object.entries(m.matched).map(([bucket, terms]) => `${bucket}=[${terms.join(', ')}]`).join(' ') || 'nothing';
  return `MISS ${m.id}: got ${m.route ?? 'no route'} (${m.bucket}), expected ${m.expected.join('|')}\n  matched: ${matched}\n  prompt:  ${m.prompt}`;
}

export function percent(r: EvalResult): number {
  return r.total === 0 ? 0 : (100 * r.correct) / r.total;
}

/**
 * The sets run when no --file is given: the shared dev sets when present (else their copies in
 * test/fixtures, which may be older), then the repo's own.
 */
export const DEFAULT_SETS: Array<[path: string, fallback?: string]> = [
  ['../shared/eval/routing-dev.jsonl', 'test/fixtures/routing-dev.jsonl'],
  ['../shared/eval/routing-clients-dev.jsonl', 'test/fixtures/routing-clients-dev.jsonl'],
  ['test/fixtures/routing-heldout.jsonl'],
  ['test/fixtures/routing-own-heldout.jsonl'],
  ['test/fixtures/routing-own-heldout-2.jsonl'],
  ['test/fixtures/routing-clients-heldout.jsonl'],
  ['test/fixtures/routing-clients-heldout-2.jsonl'],
  ['test/fixtures/routing-heldout-3.jsonl'],
  ['test/fixtures/routing-clients-heldout-3.jsonl'],
  ['test/fixtures/routing-heldout-4.jsonl'],
  ['test/fixtures/routing-heldout-5.jsonl'],
  ['test/fixtures/routing-heldout-6.jsonl'],
  ['test/fixtures/routing-heldout-7.jsonl'],
  ['test/fixtures/routing-heldout-8.jsonl'],
  ['test/fixtures/routing-heldout-9.jsonl'],
  ['test/fixtures/routing-heldout-10.jsonl'],
  ['test/fixtures/routing-heldout-11.jsonl'],
  ['test/fixtures/routing-heldout-12.jsonl'],
  ['test/fixtures/routing-heldout-13.jsonl'],
  ['test/fixtures/routing-heldout-14.jsonl'],
  ['test/fixtures/routing-heldout-15.jsonl'],
  ['test/fixtures/routing-heldout-16.jsonl'],
  ['test/fixtures/routing-heldout-17.jsonl'],
  ['test/fixtures/routing-heldout-18.jsonl'],
  ['test/fixtures/routing-heldout-19.jsonl'],
  ['test/fixtures/routing-heldout-20.jsonl'],
  ['test/fixtures/routing-heldout-21.jsonl'],
  ['test/fixtures/routing-heldout-22.jsonl'],
  ['test/fixtures/routing-heldout-23.jsonl'],
  ['test/fixtures/routing-heldout-24.jsonl'],
  ['test/fixtures/routing-heldout-25.jsonl'],
  ['test/fixtures/routing-heldout-26.jsonl'],
  ['test/fixtures/routing-heldout-27.jsonl'],
  ['test/fixtures/routing-heldout-28.jsonl'],
  ['test/fixtures/routing-heldout-29.jsonl'],
  ['test/fixtures/routing-heldout-30.jsonl'],
  ['test/fixtures/routing-heldout-31.jsonl'],
  ['test/fixtures/routing-heldout-32.jsonl'],
  ['test/fixtures/routing-heldout-33.jsonl'],
  ['test/fixtures/routing-heldout-34.jsonl'],
  ['test/fixtures/routing-heldout-35.jsonl'],
  ['test/fixtures/routing-heldout-36.jsonl'],
  ['test/fixtures/routing-heldout-37.jsonl'],
  ['test/fixtures/routing-heldout-38.jsonl'],
  ['test/fixtures/routing-heldout-39.jsonl'],
  ['test/fixtures/routing-heldout-40.jsonl'],
  ['test/fixtures/routing-heldout-41.jsonl'],
  ['test/fixtures/routing-heldout-42.jsonl'],
  ['test/fixtures/routing-heldout-43.jsonl'],
  ['test/fixtures/routing-heldout-44.jsonl'],
  ['test/fixtures/routing-heldout-45.jsonl'],
  ['test/fixtures/routing-heldout-46.jsonl'],
  ['test/fixtures/routing-heldout-47.jsonl'],
  ['test/fixtures/routing-clients-heldout-4.jsonl'],
  ['test/fixtures/routing-clients-heldout-5.jsonl'],
  ['test/fixtures/routing-clients-heldout-6.jsonl'],
  ['test/fixtures/routing-clients-heldout-7.jsonl'],
  ['test/fixtures/routing-clients-heldout-8.jsonl'],
  ['test/fixtures/routing-clients-heldout-9.jsonl'],
  ['test/fixtures/routing-clients-heldout-10.jsonl'],
  ['test/fixtures/routing-clients-heldout-11.jsonl'],
  ['test/fixtures/routing-clients-heldout-12.jsonl'],
  ['test/fixtures/routing-clients-heldout-13.jsonl'],
  ['test/fixtures/routing-clients-heldout-14.jsonl'],
  ['test/fixtures/routing-clients-heldout-15.jsonl'],
  ['test/fixtures/routing-clients-heldout-16.jsonl'],
  ['test/fixtures/routing-clients-heldout-17.jsonl'],
  ['test/fixtures/routing-clients-heldout-18.jsonl'],
  ['test/fixtures/routing-clients-heldout-19.jsonl'],
  ['test/fixtures/routing-clients-heldout-20.jsonl'],
  ['test/fixtures/routing-clients-heldout-21.jsonl'],
  ['test/fixtures/routing-clients-heldout-22.jsonl'],
  ['test/fixtures/routing-clients-heldout-23.jsonl'],
  ['test/fixtures/routing-stress.jsonl'],
];

function parseArgs(argv: string[]): { policy: string; files: string[]; min: number | undefined } {
  const opts = { policy: resolve(REPO_ROOT, 'routing_policy.yaml'), files: [] as string[], min: undefined as number | undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined || !['--policy', '--file', '--min'].includes(flag)) {
      throw new Error(`usage: eval-routing [--policy P] [--file F ...] [--min PCT] (bad argument "${flag}")`);
    }
    i++;
    if (flag === '--policy') opts.policy = resolve(value);
    else if (flag === '--file') opts.files.push(resolve(value));
    else if (Number.isFinite(Number(value))) opts.min = Number(value);
    else throw new Error(`--min needs a number, got "${value}"`);
  }
  return opts;
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const policy = loadPolicyFile(opts.policy);
  console.log(`policy: ${opts.policy}`);
  const explicit = opts.files.length > 0;
  const sets: Array<[string, string?]> = explicit ? opts.files.map((f) => [f]) : DEFAULT_SETS.map(([f, copy]) => [resolve(REPO_ROOT, f), copy && resolve(REPO_ROOT, copy)]);
  const summary: string[] = [];
  for (const [wanted, copy] of sets) {
    let file = wanted;
    if (!existsSync(file)) {
      if (explicit) throw new Error(`${file}: no such file`);
      if (copy === undefined || !existsSync(copy)) {
        console.log(`\nskipped: ${file} is not in this checkout`);
        continue;
      }
      console.log(`\n${file} is not in this checkout: using the repo's copy`);
      file = copy;
    }
    const result = evaluate(policy, readCases(file));
    console.log(`\nfile:   ${file}`);
    for (const m of result.misses) console.log(formatMiss(m));
    const pct = percent(result);
    const line = `accuracy: ${result.correct}/${result.total} (${pct.toFixed(1)}%)`;
    console.log(line);
    summary.push(`${line.padEnd(30)} ${file.startsWith(REPO_ROOT) ? file.slice(REPO_ROOT.length + 1) : file}`);
    if (opts.min !== undefined && pct < opts.min) {
      console.error(`accuracy ${pct.toFixed(1)}% is below --min ${opts.min}% on ${file}`);
      process.exitCode = 1;
    }
  }
  if (summary.length > 1) console.log(`\n${summary.join('\n')}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 2;
  }
}
