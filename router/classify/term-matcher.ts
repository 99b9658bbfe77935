// Finding a vocabulary's terms in a text: words through the trie index (term-index.ts), and terms
// of scripts written without spaces (Han, kana, Hangul) as substrings, since there a word has no
// boundary to find. A long text is read at its start and its end only.
import { SPACELESS, TermIndex, type TermEntry } from './term-index.ts';

/** Characters searched for spaceless terms: the start and the end of a long text. */
const SPACELESS_WINDOW = 4096;

export class TermMatcher {
  readonly #index: TermIndex;
  /** Term ids matched by substring (SPACELESS terms, lower-cased), not by the index. */
  readonly #spaceless: Array<{ id: number; text: string }> = [];
  /** Some spaceless term has letters with case ("PR 올려"): the text is lower-cased to match it. */
  readonly #spacelessCased: boolean;
  /** Characters read from each end of a long text. */
  readonly #scanHalf: number;

  /** `scanChars`: a longer text is read on its first and last scanChars / 2 characters. */
  constructor(entries: readonly TermEntry[], scanChars: number) {
    let cased = false;
    // The index keeps every id (so ids stay positions in `entries`); a spaceless term gets an
    // empty term there, which the index skips.
    const indexed = entries.map((entry, id) => {
      if (!SPACELESS.test(entry.term)) return entry;
      const text = entry.term.replace(/\*$/, '').trim().toLowerCase();
      this.#spaceless.push({ id, text });
      if (text !== text.toUpperCase()) cased = true;
      return { ...entry, term: '' };
    });
    this.#index = new TermIndex(indexed);
    this.#spacelessCased = cased;
    this.#scanHalf = Math.floor(scanChars / 2);
  }

  /** Adds the ids (positions in the entries) of the distinct terms found in `text` to `hits`. */
  scanInto(text: string, hits: Set<number>): void {
    const add = (id: number): void => void hits.add(id);
    const half = this.#scanHalf;
    if (text.length <= 2 * half) this.#index.scan(text, add);
    else {
      // The start and the end, each cut at a separator so no word is read half.
      this.#index.scan(text, add, 0, cutBefore(text, half));
      this.#index.scan(text, add, cutAfter(text, text.length - half));
    }
    if (this.#spaceless.length === 0) return;
    const window = text.length <= 2 * SPACELESS_WINDOW ? text : text.slice(0, SPACELESS_WINDOW) + '\n' + text.slice(-SPACELESS_WINDOW);
    if (!SPACELESS.test(window)) return;
    const searched = this.#spacelessCased ? window.toLowerCase() : window;
    for (const { id, text: term } of this.#spaceless) if (searched.includes(term)) hits.add(id);
  }
}

/** The last whitespace at or before `at` (or `at` when there is none within 64 characters). */
function cutBefore(text: string, at: number): number {
  for (let i = at; i > at - 64 && i > 0; i--) if (isSpace(text.charCodeAt(i))) return i;
  return at;
}

/** Just past the first whitespace at or after `at` (or `at` when there is none within 64). */
function cutAfter(text: string, at: number): number {
  for (let i = at; i < at + 64 && i < text.length; i++) if (isSpace(text.charCodeAt(i))) return i + 1;
  return at;
}

export function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 9 || code === 13;
}
