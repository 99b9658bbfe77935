// Nearest example prompts by character n-grams: a deterministic, language-agnostic second
// opinion for when keywords are weak or tied. Built once when the policy loads.
//
// Representation: the text lower-cased, every run of non-letters/digits one space; then each
// character trigram (words padded by the spaces around them) and, for scripts written without
// spaces (Han, kana, Hangul), each such character and each pair of adjacent ones. Weights are
// tf-idf over the policy's examples; similarity is the cosine. Only the first `max_chars` of the text are read,
// so the cost does not grow with the prompt.

export interface SimilarityConfig {
  /** Consulted when the best keyword score is below this, or the top two buckets tie. */
  consult_below: number;
  /** Examples less similar than this are ignored. */
  min_similarity: number;
  /** A bucket gains weight × (its best example's similarity). */
  weight: number;
  /** Characters of the instruction read (from its start). */
  max_chars: number;
}

export interface Neighbour {
  bucket: string;
  example: string;
  similarity: number;
}

const NON_WORD = /[^\p{L}\p{N}]+/gu;

function isSpaceless(c: number): boolean {
  return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) || (c >= 0xf900 && c <= 0xfaff);
}

/** n-gram → count. */
export function grams(text: string, maxChars: number): Map<string, number> {
  const s = ' ' + (text.length > maxChars ? text.slice(0, maxChars) : text).toLowerCase().replace(NON_WORD, ' ').trim() + ' ';
  const out = new Map<string, number>();
  if (s.length < 3) return out;
  for (let i = 0; i + 3 <= s.length; i++) {
    const g = s.slice(i, i + 3);
    if (g.charCodeAt(1) === 32) continue; // " x " of a one-letter word, or a gap: no information
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  for (let i = 1; i + 1 < s.length; i++) {
    if (!isSpaceless(s.charCodeAt(i))) continue;
    // In these scripts one character is often a word (写 write, 程 program): unigrams too.
    const one = '\u0002' + s[i];
    out.set(one, (out.get(one) ?? 0) + 1);
    if (isSpaceless(s.charCodeAt(i + 1))) {
      const g = '\u0001' + s.slice(i, i + 2);
      out.set(g, (out.get(g) ?? 0) + 1);
    }
  }
  return out;
}

export class ExampleIndex {
  readonly size: number;
  readonly #bucketOf: Int32Array;
  readonly #texts: string[];
  readonly #buckets: string[];
  readonly #idf = new Map<string, number>();
  /** gram → [example, weight, example, weight, ...] (example weights already divided by its norm). */
  readonly #postings = new Map<string, number[]>();
  readonly #maxChars: number;

  constructor(buckets: string[], examples: Array<{ bucket: number; text: string }>, maxChars: number) {
    this.size = examples.length;
    this.#buckets = buckets;
    this.#maxChars = maxChars;
    this.#bucketOf = Int32Array.from(examples.map((e) => e.bucket));
    this.#texts = examples.map((e) => e.text);
    const vectors = examples.map((e) => grams(e.text, maxChars));
    const df = new Map<string, number>();
    for (const v of vectors) for (const g of v.keys()) df.set(g, (df.get(g) ?? 0) + 1);
    for (const [g, n] of df) this.#idf.set(g, Math.log(1 + this.size / n));
    vectors.forEach((v, id) => {
      let norm = 0;
      const weighted: Array<[string, number]> = [];
      for (const [g, count] of v) {
        const w = (1 + Math.log(count)) * this.#idf.get(g)!;
        weighted.push([g, w]);
        norm += w * w;
      }
      norm = Math.sqrt(norm) || 1;
      for (const [g, w] of weighted) {
        let list = this.#postings.get(g);
        if (!list) this.#postings.set(g, (list = []));
        list.push(id, w / norm);
      }
    });
  }

  /** Each bucket's best similarity (by bucket number) and the `top` nearest examples overall. */
  nearest(text: string, top: number): { best: Float64Array; neighbours: Neighbour[] } {
    const best = new Float64Array(this.#buckets.length);
    if (this.size === 0 || text === '') return { best, neighbours: [] };
    const q = grams(text, this.#maxChars);
    const dot = new Float64Array(this.size);
    let norm = 0;
    for (const [g, count] of q) {
      const idf = this.#idf.get(g);
      if (idf === undefined) {
        // Unseen grams still count in the query's length (with the largest idf): a long text
        // that shares a few grams with an example is not similar to it.
        const w = (1 + Math.log(count)) * Math.log(1 + this.size);
        norm += w * w;
        continue;
      }
      const w = (1 + Math.log(count)) * idf;
      norm += w * w;
      const list = this.#postings.get(g)!;
      for (let k = 0; k < list.length; k += 2) dot[list[k]!]! += w * list[k + 1]!;
    }
    norm = Math.sqrt(norm) || 1;
    const order: number[] = [];
    for (let id = 0; id < this.size; id++) {
      const sim = dot[id]! / norm;
      dot[id] = sim;
      const b = this.#bucketOf[id]!;
      if (sim > best[b]!) best[b] = sim;
      if (sim > 0) order.push(id);
    }
    // Ties by example order in the policy: deterministic.
    order.sort((a, b) => dot[b]! - dot[a]! || a - b);
    const neighbours = order.slice(0, top).map((id) => ({ bucket: this.#buckets[this.#bucketOf[id]!]!, example: this.#texts[id]!, similarity: Math.round(dot[id]! * 1000) / 1000 }));
    return { best, neighbours };
  }
}
