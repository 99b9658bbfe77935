// Keyword classifier: scores the scoped text against every bucket's terms and signals.
// Pure: the same facts and the same compiled classifier always give the same result.
import type { BucketConfig, SignalName } from '../policy/types.ts';
import type { RequestFacts } from './request-facts.ts';
import { TermIndex, type TermEntry } from './term-index.ts';

export interface Classification {
  bucket: string;
  /** Every bucket's score, keyed by bucket name (0 for buckets that matched nothing). */
  scores: Record<string, number>;
  /** Terms (and `signal:<name>`) that contributed, per bucket that matched anything. */
  matched: Record<string, string[]>;
  /** 'bucket_match' when something scored, 'default_bucket' otherwise. */
  reason: 'bucket_match' | 'default_bucket';
  /** 0 = the last user message decided; n = the n-th earlier user turn did (lookback). */
  turn: number;
}

// A message this long is likely an instruction plus pasted material.
const LONG_TEXT_CHARS = 600;
const INSTRUCTION_CHARS = 200;

const SIGNALS: SignalName[] = ['tools', 'code_block', 'inline_code', 'json_schema', 'question'];

export class Classifier {
  readonly #buckets: string[];
  readonly #index: TermIndex;
  readonly #signalWeights: Array<Partial<Record<SignalName, number>>>;
  /** Lower rank wins a tie. */
  readonly #tieRank: number[];
  readonly #defaultBucket: string;
  readonly #lookbackBelow: number;

  /**
   * `lookbackBelow` (policy classifier.lookback_below): terms lighter than this are hints that
   * never decide a turn alone; a last message with no heavier term borrows the newest earlier
   * user turn that has one. 0 keeps the plain rule: only a message that matched no term at all
   * looks back.
   */
  constructor(buckets: Record<string, BucketConfig>, tieBreak: string[], defaultBucket: string, lookbackBelow = 0) {
    this.#buckets = Object.keys(buckets);
    const entries: TermEntry[] = [];
    this.#buckets.forEach((name, b) => {
      for (const spec of buckets[name]!.keywords ?? []) {
        const term = typeof spec === 'string' ? spec : spec.term;
        const weight = typeof spec === 'string' ? 1 : (spec.weight ?? 1);
        entries.push({ term, bucket: b, weight });
      }
    });
    this.#index = new TermIndex(entries);
    this.#signalWeights = this.#buckets.map((name) => buckets[name]!.signals ?? {});
    this.#tieRank = this.#buckets.map((name) => {
      const rank = tieBreak.indexOf(name);
      return rank === -1 ? tieBreak.length : rank;
    });
    this.#defaultBucket = defaultBucket;
    this.#lookbackBelow = lookbackBelow;
  }

  classify(facts: RequestFacts): Classification {
    const texts = facts.scoredTexts.length > 0 ? facts.scoredTexts : [''];
    let turn = 0;
    let hits = this.#termHits(texts[0]!);
    // Lookback: a last message too short to tell ("yes, do it", "can you explain that?")
    // borrows the newest earlier user turn that is decisive.
    if (!this.#decisive(hits)) {
      for (let t = 1; t < texts.length; t++) {
        const earlier = this.#termHits(texts[t]!);
        if (this.#decisive(earlier)) {
          hits = earlier;
          turn = t;
          break;
        }
      }
    }

    const n = this.#buckets.length;
    const score = new Float64Array(n);
    const matched: Array<string[] | undefined> = new Array(n);
    // In a long message the instruction usually sits on its own first or last line
    // ("Summarize this article:" above a pasted text). When that line is decisive it decides,
    // so the pasted text's own words cannot outvote it; otherwise the whole text is scored.
    const instruction = this.#instructionHits(texts[turn]!);
    const fromInstruction = this.#decisive(instruction);
    for (const id of fromInstruction ? instruction : hits) {
      const e = this.#index.entries[id]!;
      score[e.bucket] += e.weight;
      (matched[e.bucket] ??= []).push(fromInstruction ? `instruction:${e.term}` : e.term);
    }
    for (let b = 0; b < n; b++) {
      const weights = this.#signalWeights[b]!;
      for (const s of SIGNALS) {
        const w = weights[s];
        if (w !== undefined && facts.signals[s]) {
          score[b] += w;
          (matched[b] ??= []).push(`signal:${s}`);
        }
      }
    }

    let best = -1;
    for (let b = 0; b < n; b++) {
      if (score[b]! <= 0) continue;
      if (best === -1 || score[b]! > score[best]! || (score[b] === score[best] && this.#tieRank[b]! < this.#tieRank[best]!)) best = b;
    }

    const scores: Record<string, number> = {};
    const matchedOut: Record<string, string[]> = {};
    for (let b = 0; b < n; b++) {
      const name = this.#buckets[b]!;
      scores[name] = Math.round(score[b]! * 1000) / 1000;
      if (matched[b]) matchedOut[name] = matched[b]!;
    }
    return {
      bucket: best === -1 ? this.#defaultBucket : this.#buckets[best]!,
      scores,
      matched: matchedOut,
      reason: best === -1 ? 'default_bucket' : 'bucket_match',
      turn: best === -1 ? 0 : turn,
    };
  }

  /** Terms on the first or last line of a long text (each line at most INSTRUCTION_CHARS). */
  #instructionHits(text: string): Set<number> {
    const hits = new Set<number>();
    if (text.length < LONG_TEXT_CHARS) return hits;
    const trimmed = text.trim();
    const firstEnd = trimmed.indexOf('\n');
    const lastStart = trimmed.lastIndexOf('\n');
    if (firstEnd > 0 && firstEnd <= INSTRUCTION_CHARS) this.#index.scan(trimmed.slice(0, firstEnd), (id) => hits.add(id));
    if (lastStart !== -1 && trimmed.length - lastStart <= INSTRUCTION_CHARS) this.#index.scan(trimmed.slice(lastStart + 1), (id) => hits.add(id));
    return hits;
  }

  /** Whether these hits decide a bucket on their own, without looking at earlier turns. */
  #decisive(hits: Set<number>): boolean {
    if (this.#lookbackBelow <= 0) return hits.size > 0;
    for (const id of hits) if (this.#index.entries[id]!.weight >= this.#lookbackBelow) return true;
    return false;
  }

  /** Distinct term ids found in `text`, in first-seen order. */
  #termHits(text: string): Set<number> {
    const hits = new Set<number>();
    if (text !== '') this.#index.scan(text, (id) => hits.add(id));
    return hits;
  }
}
