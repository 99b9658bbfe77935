// A trie of every bucket's keywords, walked over the prompt's char codes.
//
// Why not a regex: one Unicode-aware regex over all terms (or a \p{L} tokenizer feeding a Map)
// costs ~30 ms on a 500 KB prompt and ~100 µs on 2 KB (measured on this 2-core machine). The
// walk below visits each char about once with a table lookup, allocates nothing per word, and
// stays within a few ms for 500 KB (see bench/classifier.ts).
//
// Why typed arrays: the trie is flattened into an Int32Array of transitions indexed by
// (node, symbol), and every UTF-16 unit maps to its symbol through one Uint16Array read. The
// object trie this replaces (child arrays and Maps, a closure call and a Set insert per match)
// took ~9.2 ms of CPU on the 500 KB bench prompt; the flat one takes ~4.7 ms, same machine and
// run (bench/classifier.ts), and ~3.7 ms since the scan stopped reading a word's end twice.
// What is left is mostly the branching at word boundaries: a plain loop that only splits the
// same text into words takes ~3 ms here. (A DFA over all the walks at once, one table read per
// character, was tried: ~6 ms, because each read waits on the previous one.)
//
// Matching rules, the same for every language:
// - case-insensitive (String.prototype.toLowerCase, which is Unicode-aware);
// - accent-insensitive: a letter with diacritics matches its base letter (é = e, ü = u, ñ = n,
//   क़ = क), whether typed precomposed or with combining marks, and chandrabindu = anusvara.
//   People routinely type Spanish, French, German and Hindi without accents or nukta, so one
//   policy term must cover every spelling;
// - terms match whole words: a word is a run of letters, digits, combining marks (so Devanagari
//   vowel signs stay inside the word) and `_`, plus trailing `+`/`#` (c++, c#, f#);
// - a phrase's words may be separated by any run of non-word characters ("tl;dr" = "tl dr");
// - a word also ends where a script written without spaces (kana, Han, Hangul) begins, as in
//   "GitHubにissueを立てて" or "Frigateの通知": those scripts' own terms are matched as substrings
//   by the classifier, never by this index, so their characters only part the words around them;
// - a trailing `*` matches any word ending ("refactor*" matches "refactoring").

export interface TermEntry {
  /** The term as written in the policy, for "matched" lists. */
  term: string;
  bucket: number;
  weight: number;
}

const SPACE = 32;

/**
 * Scripts written without spaces between words (kana, Han) and Hangul, whose endings attach to
 * the word before them. A term in these scripts is matched anywhere in a text (classifier.ts).
 */
const SPACELESS_RANGES: ReadonlyArray<readonly [number, number]> = [[0x3040, 0x30ff], [0x3400, 0x9fff], [0xac00, 0xd7af], [0xf900, 0xfaff]];
const hex4 = (c: number) => c.toString(16).padStart(4, '0');
export const SPACELESS = new RegExp(`[${SPACELESS_RANGES.map(([from, to]) => `\\u${hex4(from)}-\\u${hex4(to)}`).join('')}]`);

function isSpacelessCode(c: number): boolean {
  return SPACELESS_RANGES.some(([from, to]) => c >= from && c <= to);
}

/** FOLD value of a mark that stays inside a word but is not compared (accents, nukta). */
const IGNORED = 1;

function isIgnoredMark(code: number): boolean {
  return (code >= 0x0300 && code <= 0x036f) || code === 0x093c; // combining diacritics; Devanagari nukta
}

// FOLD[c] is the folded form of UTF-16 unit c when c is a word character, else 0 (IGNORED for
// marks skipped inside words). Folded = lower-case, then without the diacritics its canonical
// decomposition carries. Built once at load (~20 ms) so the scan does one table read per
// character and never lower-cases, normalises or slices the prompt. Surrogate halves count as
// word characters: they belong to astral letters and emoji, and keeping them inside words is
// harmless.
const FOLD = buildFoldTable();

function buildFoldTable(): Uint16Array {
  const table = new Uint16Array(65536);
  const wordChar = /[\p{L}\p{N}\p{M}_]/u;
  for (let c = 0; c < 65536; c++) {
    if (c >= 0xd800 && c <= 0xdfff) {
      table[c] = c;
      continue;
    }
    const s = String.fromCharCode(c);
    if (!wordChar.test(s)) continue;
    if (isIgnoredMark(c)) {
      table[c] = IGNORED;
      continue;
    }
    const lower = s.toLowerCase();
    let folded = lower.length === 1 ? lower.charCodeAt(0) : c;
    const parts = String.fromCharCode(folded).normalize('NFD');
    let onlyMarks = parts.length > 1;
    for (let i = 1; i < parts.length; i++) onlyMarks &&= isIgnoredMark(parts.charCodeAt(i));
    if (onlyMarks) {
      const base = parts[0]!.toLowerCase(); // İ decomposes to an upper-case I
      folded = base.length === 1 ? base.charCodeAt(0) : parts.charCodeAt(0);
    }
    table[c] = folded;
  }
  table[0x0901] = 0x0902; // Devanagari chandrabindu is often typed as anusvara (हूँ / हूं)
  return table;
}

function isTrailer(code: number): boolean {
  return code === 43 /* + */ || code === 35 /* # */;
}

/** Splits a term into lower-case words the same way the scanner sees the prompt. */
export function normaliseTerm(term: string): { words: string; prefix: boolean } {
  let text = term.trim();
  const prefix = text.endsWith('*');
  if (prefix) text = text.slice(0, -1);
  const words: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const folded = FOLD[c]!;
    if (folded === IGNORED) continue;
    if (folded !== 0) current += String.fromCharCode(folded);
    else if (current !== '' && isTrailer(c)) current += text[i];
    else if (current !== '') {
      words.push(current);
      current = '';
    }
  }
  if (current !== '') words.push(current);
  return { words: words.join(' '), prefix };
}

// What one UTF-16 unit of the prompt is to the scanner: SYMBOL[c] for the index's alphabet.
// Letters that occur in some term get their own symbol from FIRST_LETTER on; any other word
// character is OTHER, which no transition accepts.
/** Not part of a word. */
const SEP = 0;
/** `+` and `#`: separators, except straight after a word (c++, c#). */
const PLUS = 1;
const HASH = 2;
/** Inside a word but not compared (accents typed as combining marks, nukta). */
const MARK = 3;
/** A word character that no term contains. */
const OTHER = 4;
/** The transition between a phrase's words (never read from the prompt). */
const GAP = 5;
const FIRST_LETTER = 6;
/**
 * Transitions on the first DENSE_COLUMNS symbols (the letters terms use most) live in one flat
 * table; rarer ones (a policy with a large alphabet, e.g. CJK terms) in a Map. This caps the
 * table at nodes × 128 × 4 bytes (the shipped policy: ~6,400 nodes × 92 columns, ~2.4 MB).
 */
const DENSE_COLUMNS = 128;

// A transition is the child's row offset (node × columns, a multiple of 4) with the child's
// flags in the two low bits, so a step is one table read and no multiply. 0 = no transition
// (the root, offset 0, is nobody's child).
const ENDS_EXACT = 1;
const ENDS_PREFIX = 2;
const FLAG_BITS = 3;

export class TermIndex {
  readonly entries: readonly TermEntry[];
  /** UTF-16 unit → symbol. */
  readonly #symbol = new Uint16Array(65536);
  /** Row width: symbols with a dense column, rounded up to a multiple of 4. */
  readonly #columns: number;
  readonly #next: Int32Array;
  /**
   * Transitions on symbols past the dense columns, keyed `node * 65536 + symbol` (a small
   * integer up to 32,768 nodes; a row offset times 65536 would be a heap number, which made
   * every lookup a slow hash), and the symbols that have any such transition at all.
   */
  readonly #rare = new Map<number, number>();
  readonly #hasRare = new Uint8Array(65536);
  /** Term ids ending at node x: ids[idStart[x] .. prefixStart[x]) exact, then .. idStart[x + 1]) prefix. */
  readonly #idStart: Int32Array;
  readonly #prefixStart: Int32Array;
  readonly #ids: Int32Array;
  /** seen[id] === #epoch: already reported during the current scan. */
  readonly #seen: Uint32Array;
  #epoch = 0;

  constructor(entries: TermEntry[]) {
    this.entries = entries;
    this.#seen = new Uint32Array(entries.length);
    const terms = entries.map((entry) => normaliseTerm(entry.term));

    // Alphabet: the letters terms use, most frequent first (they get the dense columns).
    const freq = new Map<number, number>();
    for (const { words } of terms) {
      for (let i = 0; i < words.length; i++) {
        const c = words.charCodeAt(i);
        if (c !== SPACE && !isTrailer(c)) freq.set(c, (freq.get(c) ?? 0) + 1);
      }
    }
    const letters = [...freq.keys()].sort((a, b) => freq.get(b)! - freq.get(a)! || a - b);
    const letterSymbol = new Uint16Array(65536);
    letters.forEach((c, i) => (letterSymbol[c] = FIRST_LETTER + i));
    const columns = (Math.min(FIRST_LETTER + letters.length, DENSE_COLUMNS) + 3) & ~3;
    this.#columns = columns;
    for (let c = 0; c < 65536; c++) {
      const folded = FOLD[c]!;
      if (folded === 0) this.#symbol[c] = c === 43 ? PLUS : c === 35 ? HASH : SEP;
      else if (folded === IGNORED) this.#symbol[c] = MARK;
      // A spaceless script's character that no term of the index uses parts the words around it.
      else this.#symbol[c] = letterSymbol[folded] || (isSpacelessCode(c) ? SEP : OTHER);
    }
    const symbolOf = (c: number) => (c === SPACE ? GAP : isTrailer(c) ? this.#symbol[c]! : letterSymbol[c]!);

    // Build the trie as node numbers, then lay it out as row offsets with flags.
    const children: Array<Map<number, number>> = [new Map()];
    const exact: number[][] = [[]];
    const prefix: number[][] = [[]];
    terms.forEach(({ words, prefix: isPrefix }, id) => {
      if (words === '') return;
      let node = 0;
      for (let i = 0; i < words.length; i++) {
        const sym = symbolOf(words.charCodeAt(i));
        let child = children[node]!.get(sym);
        if (child === undefined) {
          child = children.length;
          children[node]!.set(sym, child);
          children.push(new Map());
          exact.push([]);
          prefix.push([]);
        }
        node = child;
      }
      (isPrefix ? prefix : exact)[node]!.push(id);
    });
    const nodes = children.length;
    const flags = (x: number) => (exact[x]!.length > 0 ? ENDS_EXACT : 0) | (prefix[x]!.length > 0 ? ENDS_PREFIX : 0);
    this.#next = new Int32Array(nodes * columns);
    children.forEach((edges, node) => {
      for (const [sym, child] of edges) {
        const to = child * columns + flags(child);
        if (sym < columns) this.#next[node * columns + sym] = to;
        else {
          this.#rare.set(node * 65536 + sym, to);
          this.#hasRare[sym] = 1;
        }
      }
    });
    this.#idStart = new Int32Array(nodes + 1);
    this.#prefixStart = new Int32Array(nodes);
    const ids: number[] = [];
    for (let node = 0; node < nodes; node++) {
      this.#idStart[node] = ids.length;
      ids.push(...exact[node]!);
      this.#prefixStart[node] = ids.length;
      ids.push(...prefix[node]!);
    }
    this.#idStart[nodes] = ids.length;
    this.#ids = Int32Array.from(ids);
  }

  /**
   * Calls `onMatch(termId)` once for every distinct term found in `text` (any case), in the
   * order the terms first occur. `from` / `to` bound the part of `text` read (a slice of a long
   * text would be a V8 sliced string, whose characters read slower than the flat original's).
   */
  scan(text: string, onMatch: (termId: number) => void, from = 0, to = text.length): void {
    if (++this.#epoch === 0xffffffff) {
      this.#seen.fill(0);
      this.#epoch = 1;
    }
    // Hand-inlined loops: this runs once per prompt character, and a method call per word
    // (or per step) cost 15-20% on the 500 KB bench prompt.
    const symbol = this.#symbol;
    const next = this.#next;
    const columns = this.#columns;
    const n = to;
    let i = from;
    while (i < n) {
      let sym = symbol[text.charCodeAt(i)]!;
      if (sym <= HASH) {
        i++;
        continue;
      }
      // A word starts at i. When some term starts with its letter, walk the trie along the
      // word (letters, then any +/# trailer); on a miss, skip the rest of the word.
      let t = sym < FIRST_LETTER ? 0 : sym < columns ? next[sym]! : this.#step(0, sym);
      let j = i + 1;
      if (t !== 0) {
        if (t & ENDS_PREFIX) this.#reportAt(t, ENDS_PREFIX, onMatch);
        for (; j < n; j++) {
          sym = symbol[text.charCodeAt(j)]!;
          if (sym === SEP) break;
          if (sym === MARK) continue;
          t = sym < columns ? next[(t & ~FLAG_BITS) + sym]! : this.#step(t, sym);
          if (t === 0) {
            j++; // a word character: the skip below goes on after it
            break;
          }
          if (t & ENDS_PREFIX) this.#reportAt(t, ENDS_PREFIX, onMatch);
        }
        // The whole word matched a trie path: terms ending here, then phrases going on.
        if (t !== 0) {
          if (t & ENDS_EXACT) this.#reportAt(t, ENDS_EXACT, onMatch);
          if (next[(t & ~FLAG_BITS) + GAP] !== 0) this.#continuePhrases(text, j, n, t, onMatch);
        }
      }
      while (j < n && symbol[text.charCodeAt(j)] !== SEP) j++;
      // j is past the end or on a separator, which starts no word: the next word is further on.
      i = j + 1;
    }
  }

  /**
   * From the end of a matched word at `from`, node `t`: while some phrase continues, crosses
   * the separator run and walks the next word. Never moves the scan's own position: each of
   * these words is also scanned as a word start of its own.
   */
  #continuePhrases(text: string, from: number, n: number, t: number, onMatch: (termId: number) => void): void {
    const symbol = this.#symbol;
    let k = from;
    for (let gap = this.#step(t, GAP); gap !== 0; gap = this.#step(t, GAP)) {
      while (k < n && symbol[text.charCodeAt(k)]! <= HASH) k++;
      if (k >= n) return;
      t = gap;
      for (; k < n; k++) {
        const sym = symbol[text.charCodeAt(k)]!;
        if (sym === SEP) break;
        if (sym === MARK) continue;
        t = this.#step(t, sym);
        if (t === 0) return;
        if (t & ENDS_PREFIX) this.#reportAt(t, ENDS_PREFIX, onMatch);
      }
      this.#reportAt(t, ENDS_EXACT, onMatch);
    }
  }

  /** The transition from `t`'s node on `sym`, or 0. */
  #step(t: number, sym: number): number {
    const row = t & ~FLAG_BITS;
    if (sym < this.#columns) return this.#next[row + sym]!;
    return this.#hasRare[sym] === 0 ? 0 : (this.#rare.get((row / this.#columns) * 65536 + sym) ?? 0);
  }

  /** Reports the terms of one kind (exact or prefix) ending at `t`'s node, first time only. */
  #reportAt(t: number, kind: number, onMatch: (termId: number) => void): void {
    if ((t & kind) === 0) return;
    const node = (t & ~FLAG_BITS) / this.#columns;
    const from = kind === ENDS_EXACT ? this.#idStart[node]! : this.#prefixStart[node]!;
    const to = kind === ENDS_EXACT ? this.#prefixStart[node]! : this.#idStart[node + 1]!;
    for (let x = from; x < to; x++) {
      const id = this.#ids[x]!;
      if (this.#seen[id] === this.#epoch) continue;
      this.#seen[id] = this.#epoch;
      onMatch(id);
    }
  }
}
