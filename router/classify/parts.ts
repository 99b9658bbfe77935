// Which part of a user message is the instruction and which is quoted material, by the markup
// clients wrap around them. Pure, and linear in the text: indexOf passes, no regex over it.
//
// - Instruction tags (Cursor's <user_query>, Cline's <task> / <user_input>, Zed's <prompt>):
//   when present, their contents are the user's words and everything else is context.
// - Quoted tags (Open WebUI's <chat_history> / <context>, <source>, <document>,
//   <file_contents>, <environment_details>) and ``` fences: material the instruction is about.
// - Code tags (Zed's <rewrite_this>): the code an editor asks to have rewritten; their presence
//   says the instruction is an edit of the user's own code.

import { fenceIsCode, looksLikeCode } from './request-facts.ts';

export interface PartsConfig {
  instruction_tags: string[];
  quoted_tags: string[];
  /** Fenced code blocks (```) are quoted material. */
  fences: boolean;
  /** Each term found in quoted material adds this fraction of its weight. */
  quoted_weight: number;
  /** Most that quoted material adds to one bucket. */
  quoted_max: number;
  /** A forced tool_choice makes the whole user message quoted material (the input to process). */
  forced_tool_input: boolean;
  /** Tags around the code an editor asks to have rewritten (Zed's <rewrite_this>). */
  code_tags?: string[];
}

export const DEFAULT_PARTS: PartsConfig = { instruction_tags: [], quoted_tags: [], fences: false, quoted_weight: 1, quoted_max: Number.POSITIVE_INFINITY, forced_tool_input: false, code_tags: [] };

export interface Parts {
  instruction: string;
  quoted: string;
  /** How the split was made, for explain: 'whole', 'instruction_tag:<name>', 'quoted:<names>'. */
  rule: string;
  /** A ``` block among the instruction's own material (not inside a quoted tag or outside the instruction tags). */
  fenced: boolean;
}

type Span = [start: number, end: number, innerStart: number, innerEnd: number];

/** A tag name's characters after '<'. */
function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d || c === 0x2e;
}

/**
 * Spans of `<tag ...>...</tag>` for the tags in `names` (outer and inner bounds; an unclosed tag
 * runs to the end), and the names found. One pass over the '<' characters (indexOf is memchr
 * fast; a search per tag name was ~0.3 ms each on a 500 KB prompt).
 */
function tagSpans(text: string, names: ReadonlySet<string>, out: Span[]): string[] {
  const found: string[] = [];
  let at = text.indexOf('<');
  while (at !== -1) {
    let k = at + 1;
    while (k < text.length && isNameChar(text.charCodeAt(k))) k++;
    const after = text.charCodeAt(k);
    const name = k > at + 1 && (after === 0x3e /* > */ || after === 0x20 || after === 0x0a) ? text.slice(at + 1, k) : '';
    if (name === '' || !names.has(name)) {
      at = text.indexOf('<', at + 1);
      continue;
    }
    const innerStart = text.indexOf('>', k) + 1;
    if (innerStart === 0) break;
    const close = '</' + name + '>';
    const closeAt = text.indexOf(close, innerStart);
    const innerEnd = closeAt === -1 ? text.length : closeAt;
    const end = closeAt === -1 ? text.length : closeAt + close.length;
    out.push([at, end, innerStart, innerEnd]);
    if (!found.includes(name)) found.push(name);
    at = end >= text.length ? -1 : text.indexOf('<', end);
  }
  return found;
}

function fenceSpans(text: string, out: Span[]): boolean {
  let found = false;
  for (let at = text.indexOf('```'); at !== -1; ) {
    const close = text.indexOf('```', at + 3);
    const end = close === -1 ? text.length : close + 3;
    out.push([at, end, at + 3, close === -1 ? text.length : close]);
    found = true;
    if (close === -1) break;
    at = text.indexOf('```', end);
  }
  return found;
}

/** Outermost spans only, in order. */
function outermost(spans: Span[]): Span[] {
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const kept: Span[] = [];
  for (const s of spans) if (kept.length === 0 || s[0] >= kept[kept.length - 1]![1]) kept.push(s);
  return kept;
}

function removeQuoted(text: string, cfg: PartsConfig): { instruction: string; quoted: string; names: string[]; fenced: boolean } {
  if (!text.includes('<') && !(cfg.fences && text.includes('```'))) return { instruction: text, quoted: '', names: [], fenced: false };
  const spans: Span[] = [];
  const names = cfg.quoted_tags.length > 0 && text.includes('<') ? tagSpans(text, nameSet(cfg.quoted_tags), spans) : [];
  if (cfg.fences && fenceSpans(text, spans)) names.push('```');
  if (spans.length === 0) return { instruction: text, quoted: '', names, fenced: false };
  // Array joins, not +=: a join gives a flat string, += a rope, which the scanner reads
  // several times slower.
  const instruction: string[] = [];
  const quoted: string[] = [];
  let from = 0;
  let fenced = false;
  for (const [start, end, innerStart, innerEnd] of outermost(spans)) {
    instruction.push(text.slice(from, start));
    quoted.push(text.slice(innerStart, innerEnd));
    fenced ||= innerStart === start + 3 && text.startsWith('```', start) && fenceIsCode(text, start, innerEnd);
    from = end;
  }
  instruction.push(text.slice(from));
  return { instruction: instruction.join('\n'), quoted: quoted.join('\n'), names, fenced };
}

const nameSets = new WeakMap<string[], ReadonlySet<string>>();

/** The tag list as a set, built once per (frozen) policy list. */
function nameSet(tags: string[]): ReadonlySet<string> {
  let set = nameSets.get(tags);
  if (!set) nameSets.set(tags, (set = new Set(tags)));
  return set;
}

export function splitParts(text: string, cfg: PartsConfig): Parts {
  if (text.includes('<') && cfg.instruction_tags.length > 0) {
    const spans: Span[] = [];
    const names = tagSpans(text, nameSet(cfg.instruction_tags), spans);
    if (spans.length > 0) {
      const inner: string[] = [];
      const context: string[] = [];
      let from = 0;
      for (const [start, end, innerStart, innerEnd] of outermost(spans)) {
        context.push(text.slice(from, start));
        inner.push(text.slice(innerStart, innerEnd));
        from = end;
      }
      context.push(text.slice(from));
      const own = removeQuoted(inner.join('\n'), cfg);
      if (own.quoted !== '') context.push(own.quoted);
      return { instruction: own.instruction, quoted: context.join('\n'), rule: `instruction_tag:${names.join(',')}`, fenced: own.fenced };
    }
  }
  const split = removeQuoted(text, cfg);
  return { instruction: split.instruction, quoted: split.quoted, rule: split.names.length > 0 ? `quoted:${split.names.join(',')}` : 'whole', fenced: split.fenced };
}

/**
 * One of the code tags holds code: the instruction is an edit of that code. What a tag holds is
 * read without the tags themselves (Zed nests <edit_here> in <rewrite_this>); prose in it (a
 * toast in a Markdown file) is a text to rewrite, not code.
 */
export function hasCodeTag(text: string, cfg: PartsConfig): boolean {
  const tags = cfg.code_tags;
  if (tags === undefined || tags.length === 0 || !text.includes('<')) return false;
  const spans: Span[] = [];
  tagSpans(text, nameSet(tags), spans);
  // Only a closed tag marks code: Zed's guidelines below also name the tags ("Do NOT include any
  // <rewrite_this> or <edit_here> tags").
  // looksLikeCode reads the first 2 KB; a tagged file of any size is cut before its tags go.
  return spans.some(([, end, innerStart, innerEnd]) => end > innerEnd && looksLikeCode(withoutTags(text.slice(innerStart, Math.min(innerEnd, innerStart + CODE_TAG_READ)), tags)));
}

/** Characters of a code tag's contents read: enough for looksLikeCode's 2 KB after the nested tags go. */
const CODE_TAG_READ = 4096;

function withoutTags(text: string, tags: string[]): string {
  let out = text;
  for (const tag of tags) out = out.split(`<${tag}>`).join('').split(`</${tag}>`).join('');
  return out;
}
