// Which part of a user message is the instruction and which is quoted material, by the markup
// clients wrap around them. Pure, and linear in the text: indexOf passes, no regex over it.
//
// - Instruction tags (Cursor's <user_query>, Cline's <task> / <user_input>, Zed's <prompt>):
//   when present, their contents are the user's words and everything else is context.
// - Quoted tags (Open WebUI's <chat_history> / <context>, <source>, <document>,
//   <file_contents>, <environment_details>) and ``` fences: material the instruction is about.

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
}

export const DEFAULT_PARTS: PartsConfig = { instruction_tags: [], quoted_tags: [], fences: false, quoted_weight: 1, quoted_max: Number.POSITIVE_INFINITY, forced_tool_input: false };

export interface Parts {
  instruction: string;
  quoted: string;
  /** How the split was made, for explain: 'whole', 'instruction_tag:<name>', 'quoted:<names>'. */
  rule: string;
}

type Span = [start: number, end: number, innerStart: number, innerEnd: number];

/** Spans of `<tag ...>...</tag>` (outer and inner bounds); an unclosed tag runs to the end. */
function tagSpans(text: string, tag: string, out: Span[]): boolean {
  const open = '<' + tag;
  const close = '</' + tag + '>';
  let found = false;
  for (let at = text.indexOf(open); at !== -1; at = text.indexOf(open, at + 1)) {
    const after = text.charCodeAt(at + open.length);
    if (after !== 0x3e /* > */ && after !== 0x20 && after !== 0x0a) continue;
    const innerStart = text.indexOf('>', at + open.length) + 1;
    if (innerStart === 0) break;
    const closeAt = text.indexOf(close, innerStart);
    const innerEnd = closeAt === -1 ? text.length : closeAt;
    const end = closeAt === -1 ? text.length : closeAt + close.length;
    out.push([at, end, innerStart, innerEnd]);
    found = true;
    at = end - 1;
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

function removeQuoted(text: string, cfg: PartsConfig): { instruction: string; quoted: string; names: string[] } {
  if (!text.includes('<') && !(cfg.fences && text.includes('```'))) return { instruction: text, quoted: '', names: [] };
  const spans: Span[] = [];
  const names: string[] = [];
  for (const tag of cfg.quoted_tags) if (tagSpans(text, tag, spans)) names.push(tag);
  if (cfg.fences && fenceSpans(text, spans)) names.push('```');
  if (spans.length === 0) return { instruction: text, quoted: '', names };
  let instruction = '';
  const quoted: string[] = [];
  let from = 0;
  for (const [start, end, innerStart, innerEnd] of outermost(spans)) {
    instruction += text.slice(from, start) + '\n';
    quoted.push(text.slice(innerStart, innerEnd));
    from = end;
  }
  instruction += text.slice(from);
  return { instruction, quoted: quoted.join('\n'), names };
}

export function splitParts(text: string, cfg: PartsConfig): Parts {
  if (text.includes('<') && cfg.instruction_tags.length > 0) {
    const spans: Span[] = [];
    const names: string[] = [];
    for (const tag of cfg.instruction_tags) if (tagSpans(text, tag, spans)) names.push(tag);
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
      return { instruction: own.instruction, quoted: context.join('\n') + (own.quoted ? '\n' + own.quoted : ''), rule: `instruction_tag:${names.join(',')}` };
    }
  }
  const split = removeQuoted(text, cfg);
  return { instruction: split.instruction, quoted: split.quoted, rule: split.names.length > 0 ? `quoted:${split.names.join(',')}` : 'whole' };
}
