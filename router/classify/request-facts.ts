// Pure extraction of what routing needs from a validated chat request: the text to score,
// images, the token estimate and structural signals. No I/O, no clock.
import type { ClassifierScope, FactSignal } from './vocabulary.ts';

export interface ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content?: string | ContentPart[] | null;
  [key: string]: unknown;
}

export interface ChatBody {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  tools?: unknown[];
  tool_choice?: unknown;
  response_format?: { type?: string; json_schema?: { schema?: unknown; name?: string } };
  metadata?: { bucket?: unknown; [key: string]: unknown };
  [key: string]: unknown;
}

export interface RequestFacts {
  model: string;
  hasImage: boolean;
  imageCount: number;
  /** ceil(text characters / 4) + 1000 per image (SPEC §4). */
  estimatedTokens: number;
  /** Tokens the client asked to generate (0 when unset). */
  maxTokens: number;
  /** Completions asked for (`n`, 1 when unset): each is a sequence on the GPU. */
  sequences: number;
  /** Texts to score, newest first: [scoped text, earlier user turns for lookback...]. */
  scoredTexts: string[];
  signals: Record<FactSignal, boolean>;
  /** The names of the functions the request offers as tools; empty when it offers none. */
  toolNames: readonly string[];
  metadataBucket: string | undefined;
  /** The system (and developer) messages' text, joined; '' when there are none. */
  systemText: string;
}

export const TOKENS_PER_IMAGE = 1000;
const SHORT_QUESTION_CHARS = 400;

export function messageText(message: ChatMessage): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (part.type === 'text' && typeof part.text === 'string') text += text === '' ? part.text : '\n' + part.text;
  }
  return text;
}

function countImages(message: ChatMessage): number {
  if (!Array.isArray(message.content)) return 0;
  let n = 0;
  for (const part of message.content) if (part.type === 'image_url') n++;
  return n;
}

/** Code points, not UTF-16 units, so an emoji counts as one character. */
const HIGH_SURROGATE = /[\uD800-\uDBFF]/;

export function countChars(text: string): number {
  if (text.length >= LARGE_TEXT) return text.length - highSurrogatesLarge(text);
  if (!HIGH_SURROGATE.test(text)) return text.length;
  let surrogatePairs = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) surrogatePairs++;
  }
  return text.length - surrogatePairs;
}

// On a long prompt with any non-Latin-1 character (V8 then stores it as UTF-16) the regex
// above is a ~0.75 ms pass per 500 KB, and a charCodeAt loop ~2 ms. Copying the UTF-16 units
// into a buffer is a memcpy, and Buffer.indexOf (memchr) finds the high byte of each unit in
// 0xD800-0xDBFF (odd offsets, little-endian): ~0.17 ms for 500 KB. The buffer is reused up
// to 2 MB (allocating a fresh 1 MB buffer per call made it ~0.9 ms).
const LARGE_TEXT = 16 * 1024;
const SCRATCH_MAX = 2 * 1024 * 1024;
let scratch = Buffer.alloc(0);

function highSurrogatesLarge(text: string): number {
  const bytes = text.length * 2;
  if (bytes > scratch.length && bytes <= SCRATCH_MAX) scratch = Buffer.allocUnsafe(Math.max(bytes, Math.min(SCRATCH_MAX, scratch.length * 2)));
  const buf = bytes <= scratch.length ? scratch : Buffer.allocUnsafe(bytes);
  buf.write(text, 0, 'utf16le');
  const units = buf.subarray(0, bytes);
  let pairs = 0;
  for (let high = 0xd8; high <= 0xdb; high++) {
    for (let at = units.indexOf(high, 1); at !== -1; at = units.indexOf(high, at + 1)) if (at & 1) pairs++;
  }
  return pairs;
}

export function estimateTokens(textChars: number, images: number): number {
  return Math.ceil(textChars / 4) + TOKENS_PER_IMAGE * images;
}

function scopedTexts(messages: ChatMessage[], scope: ClassifierScope, lookbackTurns: number): string[] {
  if (scope === 'all') return [messages.map(messageText).join('\n')];
  const userTexts: string[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === 'user') userTexts.push(messageText(messages[i]!));
  }
  if (scope === 'user') return [userTexts.slice().reverse().join('\n')];
  return userTexts.slice(0, 1 + lookbackTurns);
}

const INDENTED_CODE = /^(?: {4}|\t)\S/m;

function hasCodeBlock(text: string): boolean {
  // The regex alone is a full pass (~0.7 ms on 500 KB), and so is includes('    ') on prose
  // full of single spaces; an indented line must follow a line break, which is rare.
  return hasCodeFence(text) || (someLineStartsWith(text, INDENTS) && INDENTED_CODE.test(text));
}

/** Fences looked at, and characters of each read, before giving up: bounds the cost. */
const FENCES_READ = 16;
const FENCE_CHARS = 2048;
// Code punctuation prose rarely has: braces, semicolons, assignment, a call, a tag, a path.
const CODE_CHARS = /[{};]|[^=!<>]=[^=]|\w\(|<\/?[a-z]|\w\/\w|::|->|=>/i;

/**
 * A ``` block that holds code: one with a language (```python) or whose text has code
 * punctuation. A fence around prose (Open WebUI quotes the message to pick an emoji for as
 * ```the build finally passed```) is quoted text, not code.
 */
export function fenceIsCode(text: string, open: number, close: number): boolean {
  const infoEnd = text.indexOf('\n', open + 3);
  if (infoEnd !== -1 && infoEnd < close && /^[\w+#.-]+\s*$/.test(text.slice(open + 3, infoEnd))) return true;
  return CODE_CHARS.test(text.slice(open + 3, Math.min(close, open + 3 + FENCE_CHARS)));
}

// A line of YAML or a config file ("  entity_id: light.hall", "- platform: state"): code without
// the punctuation above.
const CONFIG_LINE = /^[ \t]*(?:- )?[A-Za-z_][\w.-]*:(?:[ \t]|$)/m;

/**
 * Whether the text an editor marked for rewriting (Zed's <rewrite_this>) holds code: code
 * punctuation or a config line in its first FENCE_CHARS characters. A Markdown toast marked
 * the same way is prose.
 */
export function looksLikeCode(text: string): boolean {
  const head = text.length > FENCE_CHARS ? text.slice(0, FENCE_CHARS) : text;
  return CODE_CHARS.test(head) || CONFIG_LINE.test(head);
}

function hasCodeFence(text: string): boolean {
  let at = text.indexOf('```');
  for (let n = 0; at !== -1 && n < FENCES_READ; n++) {
    const close = text.indexOf('```', at + 3);
    if (fenceIsCode(text, at, close === -1 ? text.length : close)) return true;
    if (close === -1) return false;
    at = text.indexOf('```', close + 3);
  }
  // Past FENCES_READ fences: a text this full of fences is code.
  return at !== -1;
}

const INDENTS = ['    ', '\t'];
/** What a multiline `^` matches after. */
const LINE_BREAKS = ['\n', '\r', '\u2028', '\u2029'];

function someLineStartsWith(text: string, prefixes: string[]): boolean {
  const breaks = LINE_BREAKS.filter((lb) => text.includes(lb));
  for (const prefix of prefixes) {
    if (prefix.length === 1 && !text.includes(prefix)) continue;
    if (text.startsWith(prefix)) return true;
    for (const lb of breaks) if (text.includes(lb + prefix)) return true;
  }
  return false;
}

// Code pasted into a sentence without a fence ("why does range(len(xs)) fail", "`npm ci`"):
// a backtick span, an empty or nested call, an index by name, an operator prose does not use,
// or a snake_case name. Identifiers themselves can never be listed as keywords, so this is the
// only way such prompts reach the coding bucket. Footnotes ("word[3]") and "file(s)" stay out.
//
// One regex with all of these alternatives cost ~4 ms of CPU on the 500 KB bench prompt (most
// of the classification budget): it tries every alternative at every character. Each form below
// starts with a character prose rarely has, so it is tried only where that character occurs
// (indexOf is memchr-fast), with the same pattern anchored there (sticky). Same matches.
const INLINE_CODE_AT: Array<[lead: string, pattern: RegExp]> = [
  ['=', /(?<=[=!+-])=|=[=>]/y], // == != += -= =>
  ['`', /`[^`\n]+`/y], // a backtick span
  ['(', /(?<=\w)\((?:\)|[\w.]*\()/y], // f() or f(g( / f(x.y(
  ['[', /(?<=\w)\[[A-Za-z_'"][\w.'"]*\]/y], // xs[key], row['name']
  ['_', /(?<=\b[a-z][a-z0-9]*)_[a-z0-9_]+\b/y], // snake_case (from its first underscore)
  ['[', /\[[^\]\s]{0,20}(?:\w-\w|\\[a-zA-Z])[^\]\s]{0,20}\][+*?{]/y], // a regex class, a range or escape in it, quantified: [a-z0-9.]+, [\d]{2}
  ['.', /(?<=\w)\.(?:py|js|mjs|cjs|ts|tsx|jsx|go|rs|rb|php|java|kt|cs|cpp|hpp|sh|ps1|ya?ml|toml|ini|cfg|conf|json|sql|service|lua|vue|tf|nix|gradle)\b/y], // a source or config file's name: printer.cfg, app.py
];
// The other operators; their first characters are common in prose, so includes() beats a scan.
const CODE_OPERATORS = ['::', '&&', '||'];

export function hasInlineCode(text: string): boolean {
  for (const op of CODE_OPERATORS) if (text.includes(op)) return true;
  for (const [lead, pattern] of INLINE_CODE_AT) {
    for (let at = text.indexOf(lead); at !== -1; at = text.indexOf(lead, at + 1)) {
      pattern.lastIndex = at;
      if (pattern.test(text)) return true;
    }
  }
  return false;
}

function isShortQuestion(text: string): boolean {
  if (text.length > SHORT_QUESTION_CHARS * 2) return false;
  const t = text.trim();
  if (t.length === 0 || t.length > SHORT_QUESTION_CHARS) return false;
  const last = t[t.length - 1];
  return last === '?' || last === '？' || t.startsWith('¿');
}

/** tool_choice that names one function, or "required" (legacy: function_call naming one). */
function isForcedTool(body: ChatBody): boolean {
  const choice = body.tool_choice ?? body.function_call;
  if (choice === 'required') return true;
  return choice !== null && typeof choice === 'object' && ((choice as { type?: unknown }).type === 'function' || typeof (choice as { name?: unknown }).name === 'string');
}

function isToolResult(m: ChatMessage | undefined): boolean {
  return m !== undefined && (m.role === 'tool' || m.role === 'function');
}

const NO_TOOLS: readonly string[] = Object.freeze([]);

/** Each offered tool's name: `{type: 'function', function: {name}}`, or a bare `{name}`. */
function toolNamesOf(tools: unknown[] | undefined): readonly string[] {
  if (!Array.isArray(tools) || tools.length === 0) return NO_TOOLS;
  const names: string[] = [];
  for (const tool of tools) {
    if (typeof tool !== 'object' || tool === null) continue;
    const fn = (tool as { function?: unknown }).function;
    const name = typeof fn === 'object' && fn !== null ? (fn as { name?: unknown }).name : (tool as { name?: unknown }).name;
    if (typeof name === 'string') names.push(name);
  }
  return names;
}

/** An assistant turn that called tools, or a tool result: a loop under way. */
function isToolTurn(m: ChatMessage): boolean {
  return isToolResult(m) || (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0);
}

/** A code fence in any non-system message before the last user message. */
function historyHasCode(messages: ChatMessage[]): boolean {
  let last = messages.length - 1;
  while (last >= 0 && messages[last]!.role !== 'user') last--;
  for (let i = 0; i < last; i++) {
    const m = messages[i]!;
    if (m.role !== 'system' && messageText(m).includes('```')) return true;
  }
  return false;
}

function systemText(messages: ChatMessage[]): string {
  let text = '';
  for (const m of messages) if (m.role === 'system' || m.role === 'developer') text += text === '' ? messageText(m) : '\n' + messageText(m);
  return text;
}

export function requestFacts(body: ChatBody, scope: ClassifierScope, lookbackTurns: number): RequestFacts {
  let chars = 0;
  let images = 0;
  for (const m of body.messages) {
    chars += countChars(messageText(m));
    images += countImages(m);
  }
  const texts = scopedTexts(body.messages, scope, lookbackTurns);
  const primary = texts[0] ?? '';
  const format = body.response_format?.type;
  const metaBucket = body.metadata?.bucket;
  return {
    model: body.model,
    hasImage: images > 0,
    imageCount: images,
    estimatedTokens: estimateTokens(chars, images),
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? 0,
    sequences: sequencesOf(body.n),
    scoredTexts: texts,
    signals: {
      tools: Array.isArray(body.tools) && body.tools.length > 0,
      code_block: hasCodeBlock(primary),
      inline_code: hasInlineCode(primary),
      json_schema: format === 'json_schema' || format === 'json_object',
      question: isShortQuestion(primary),
      forced_tool: isForcedTool(body),
      tool_result: isToolResult(body.messages[body.messages.length - 1]),
      agent_loop: body.messages.some(isToolTurn),
      history_code: historyHasCode(body.messages),
      image: images > 0,
    },
    toolNames: toolNamesOf(body.tools),
    metadataBucket: typeof metaBucket === 'string' ? metaBucket : undefined,
    systemText: systemText(body.messages),
  };
}

/** `n` completions are `n` sequences on the GPU (and take `n` slots, capped at the route's). */
function sequencesOf(n: unknown): number {
  return typeof n === 'number' && Number.isInteger(n) && n > 1 ? n : 1;
}
