// A trie of every bucket's keywords, walked over the prompt's char codes.
//
// Why not a regex: one Unicode-aware regex over all terms (or a \p{L} tokenizer feeding a Map)
// costs ~30 ms on a 500 KB prompt and ~100 µs on 2 KB (measured on this 2-core machine). The
// walk below visits each char about once with a table lookup, allocates nothing per word, and
// stays within a few ms for 500 KB (see bench/classifier.ts).
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
// - a trailing `*` matches any word ending ("refactor*" matches "refactoring").

export interface TermEntry {
  /** The term as written in the policy, for "matched" lists. */
  term: string;
  bucket: number;
  weight: number;
}

interface TrieNode {
  ascii: Array<TrieNode | undefined> | null;
  other: Map<number, TrieNode> | null;
  /** Terms that end here at a word boundary. */
  exact: number[] | null;
  /** Terms ending in `*`: match here whatever follows within the word. */
  prefix: number[] | null;
}

const SPACE = 32;
/** FOLD value of a mark that stays inside a word but is not compared (accents, nukta). */
const IGNORED = 1;

function isIgnoredMark(code: number): boolean {
  return (code >= 0x0300 && code <= 0x036f) || code === 0x093c; // combining diacritics; Devanagari nukta
}

// FOLD[c] is the folded form of UTF-16 unit c when c is a word character, else 0 (IGNORED for
// marks skipped inside words). Folded = lower-case, then without the diacritics its canonical
// decomposition carries. Built once at load (~30 ms) so the scan does one table read per
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

function newNode(): TrieNode {
  return { ascii: null, other: null, exact: null, prefix: null };
}

function child(node: TrieNode, code: number): TrieNode | undefined {
  return code < 128 ? node.ascii?.[code] : node.other?.get(code);
}

function ensureChild(node: TrieNode, code: number): TrieNode {
  const found = child(node, code);
  if (found) return found;
  const made = newNode();
  if (code < 128) (node.ascii ??= new Array<TrieNode | undefined>(128))[code] = made;
  else (node.other ??= new Map()).set(code, made);
  return made;
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

export class TermIndex {
  readonly entries: readonly TermEntry[];
  readonly #root = newNode();

  constructor(entries: TermEntry[]) {
    this.entries = entries;
    entries.forEach((entry, id) => {
      const { words, prefix } = normaliseTerm(entry.term);
      if (words === '') return;
      let node = this.#root;
      for (let i = 0; i < words.length; i++) node = ensureChild(node, words.charCodeAt(i));
      if (prefix) (node.prefix ??= []).push(id);
      else (node.exact ??= []).push(id);
    });
  }

  /**
   * Calls `onMatch(termId)` for every term occurrence in `text` (any case).
   * A term may be reported more than once; callers count distinct ids.
   */
  scan(text: string, onMatch: (termId: number) => void): void {
    const n = text.length;
    let i = 0;
    while (i < n) {
      if (FOLD[text.charCodeAt(i)] === 0) {
        i++;
        continue;
      }
      // A word starts at i: try the trie from here (when some term can start with this
      // character), then skip the rest of the word.
      if (child(this.#root, FOLD[text.charCodeAt(i)]!)) i = this.#walkFrom(text, i, onMatch);
      while (i < n && (FOLD[text.charCodeAt(i)] !== 0 || isTrailer(text.charCodeAt(i)))) i++;
    }
  }

  /** Walks the trie from word start `start`; returns how far into the first word it got. */
  #walkFrom(text: string, start: number, onMatch: (termId: number) => void): number {
    const n = text.length;
    let node: TrieNode | undefined = this.#root;
    let j = start;
    let firstWordEnd = -1;
    for (;;) {
      // Walk one word (letters, then any +/# trailer).
      while (j < n) {
        const raw = text.charCodeAt(j);
        const c = FOLD[raw]!;
        if (c === 0 && !isTrailer(raw)) break;
        if (c === IGNORED) {
          j++;
          continue;
        }
        node = child(node, c === 0 ? raw : c);
        if (!node) return firstWordEnd === -1 ? j : firstWordEnd;
        j++;
        if (node.prefix) for (const id of node.prefix) onMatch(id);
      }
      if (firstWordEnd === -1) firstWordEnd = j;
      // At a word boundary.
      if (node.exact) for (const id of node.exact) onMatch(id);
      const spaced = child(node, SPACE);
      if (!spaced) return firstWordEnd;
      // Cross the separator run to the next word of the phrase.
      let k = j;
      while (k < n && FOLD[text.charCodeAt(k)] === 0) k++;
      if (k === j || k >= n) return firstWordEnd;
      node = spaced;
      j = k;
    }
  }
}
