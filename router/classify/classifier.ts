// The classifier: scores the request's job against every bucket, in this order.
//   1. Parts (parts.ts): the last user message's instruction, apart from quoted material
//      (a chat history, a RAG context, ``` blocks); tool results are never scored, a system
//      prompt only when short and only for its job words. A forced tool_choice makes the whole
//      message input (quoted).
//   2. Terms (term-matcher.ts) in the instruction at full weight, with lookback to earlier user
//      turns (unless the message opens a new topic) and the decisive-instruction-line rule; terms
//      in quoted material at a capped fraction.
//   3. Structural signals of the request (request-facts.ts), and whether its tools are a home's
//      device control or a chat app's helpers (classifier.device_tools, chat_tools).
//   4. When the keyword evidence is weak or tied: the nearest example prompts (similarity.ts).
// Pure: the same facts and the same compiled classifier always give the same result.
import type { BucketVocabulary, SignalName } from './vocabulary.ts';
import { DEFAULT_PARTS, hasCodeTag, splitParts, type PartsConfig } from './parts.ts';
import { hasInlineCode, type RequestFacts } from './request-facts.ts';
import { ExampleIndex, type Neighbour, type SimilarityConfig } from './similarity.ts';
import type { TermEntry } from './term-index.ts';
import { isSpace, TermMatcher } from './term-matcher.ts';

export interface ClassifierOptions {
  /** classifier.lookback_below. */
  lookbackBelow?: number;
  /** classifier.parts: which part of a message is the instruction. */
  parts?: PartsConfig;
  /** classifier.similarity; undefined (or no bucket examples) turns the stage off. */
  similarity?: SimilarityConfig | undefined;
  /** classifier.system: job words of a short system prompt. */
  system?: SystemJobConfig | undefined;
  /** classifier.scan_chars: a longer text is scored on its first and last half of this. */
  scanChars?: number;
  /** classifier.new_topic: phrases that open a new subject ("btw", "unrelated:"), so the message never looks back. */
  newTopic?: string[];
  /** classifier.device_tools: tool names (a trailing * matches any ending); offering one raises `device_tools`. */
  deviceTools?: string[];
  /** classifier.chat_tools: tool names (a trailing * matches any ending); offering only these raises `chat_tools`. */
  chatTools?: string[];
}

/**
 * A short system prompt that states the job (n8n's Text Classifier: "Please classify the text
 * provided by the user into one of…"; LangChain's "You are an expert extraction algorithm")
 * while the user message is only the data. Long system prompts (agent manuals, entity lists)
 * are never read.
 */
export interface SystemJobConfig {
  /** System prompts longer than this are not read (0: never). */
  max_chars: number;
  /** Only terms at least this heavy (job words) count. */
  min_weight: number;
  /** Fraction of each such term's weight added. */
  weight: number;
}

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
  /** How that turn was split into instruction and quoted material (see parts.ts). */
  part: string;
  /** The start of the instruction text that was scored (for explain). */
  text: string;
  /** Nearest example prompts, when the similarity stage was consulted. */
  nearest: Neighbour[];
}

/** classifier.scan_chars's default: 64 K characters from the start of a text and 64 K from its end. */
const DEFAULT_SCAN_CHARS = 128 * 1024;

// A message this long is likely an instruction plus pasted material.
const LONG_TEXT_CHARS = 600;
const INSTRUCTION_CHARS = 300;

const SIGNALS: SignalName[] = ['tools', 'code_block', 'inline_code', 'json_schema', 'question', 'forced_tool', 'tool_result', 'agent_loop', 'history_code', 'image', 'device_tools', 'chat_tools'];
const NEAREST_SHOWN = 3;
const TEXT_SHOWN = 160;

/** Characters at the start of a message searched for a new-topic phrase. */
const NEW_TOPIC_CHARS = 200;

export class Classifier {
  readonly #buckets: string[];
  readonly #terms: TermMatcher;
  readonly #entries: TermEntry[];
  /** classifier.new_topic's phrases; undefined when there are none. */
  readonly #newTopic: TermMatcher | undefined;
  /** Per bucket, the signals it weighs and their weights (only those it lists). */
  readonly #signalWeights: Array<Array<[SignalName, number]>>;
  /** Lower rank wins a tie. */
  readonly #tieRank: number[];
  /** Per bucket, the bucket its score moves to when the request edits the user's code (-1: none). */
  readonly #onCode: number[];
  readonly #defaultBucket: string;
  readonly #lookbackBelow: number;
  readonly #parts: PartsConfig;
  readonly #examples: ExampleIndex | undefined;
  readonly #similarity: SimilarityConfig | undefined;
  readonly #system: SystemJobConfig | undefined;
  /** classifier.device_tools and chat_tools; undefined when there are none. */
  readonly #deviceTools: ToolNamePatterns | undefined;
  readonly #chatTools: ToolNamePatterns | undefined;

  /**
   * `lookbackBelow` (policy classifier.lookback_below): terms lighter than this are hints that
   * never decide a turn alone; a last message with no heavier term borrows the newest earlier
   * user turn that has one. 0 keeps the plain rule: only a message that matched no term at all
   * looks back.
   */
  constructor(buckets: Record<string, BucketVocabulary>, tieBreak: string[], defaultBucket: string, options: number | ClassifierOptions = 0) {
    const opts: ClassifierOptions = typeof options === 'number' ? { lookbackBelow: options } : options;
    this.#buckets = Object.keys(buckets);
    const entries: TermEntry[] = [];
    this.#buckets.forEach((name, b) => {
      for (const spec of buckets[name]!.keywords ?? []) {
        const term = typeof spec === 'string' ? spec : spec.term;
        entries.push({ term, bucket: b, weight: typeof spec === 'string' ? 1 : (spec.weight ?? 1) });
      }
    });
    const scanChars = opts.scanChars ?? DEFAULT_SCAN_CHARS;
    this.#terms = new TermMatcher(entries, scanChars);
    this.#entries = entries;
    const newTopic = opts.newTopic ?? [];
    this.#newTopic = newTopic.length > 0 ? new TermMatcher(newTopic.map((term) => ({ term, bucket: 0, weight: 1 })), scanChars) : undefined;
    this.#parts = opts.parts ?? DEFAULT_PARTS;
    this.#similarity = opts.similarity;
    this.#system = opts.system;
    this.#deviceTools = opts.deviceTools && opts.deviceTools.length > 0 ? toolNamePatterns(opts.deviceTools) : undefined;
    this.#chatTools = opts.chatTools && opts.chatTools.length > 0 ? toolNamePatterns(opts.chatTools) : undefined;
    const examples: Array<{ bucket: number; text: string }> = [];
    this.#buckets.forEach((name, b) => {
      for (const text of buckets[name]!.examples ?? []) examples.push({ bucket: b, text });
    });
    this.#examples = opts.similarity && examples.length > 0 ? new ExampleIndex(this.#buckets, examples, opts.similarity.max_chars) : undefined;
    const lookbackBelow = opts.lookbackBelow ?? 0;
    this.#signalWeights = this.#buckets.map((name) => {
      const weights = buckets[name]!.signals ?? {};
      return SIGNALS.flatMap((s): Array<[SignalName, number]> => (weights[s] === undefined ? [] : [[s, weights[s]!]]));
    });
    this.#onCode = this.#buckets.map((name) => {
      const target = buckets[name]!.on_code;
      return target === undefined ? -1 : this.#buckets.indexOf(target);
    });
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
    // A forced tool_choice (structured output): the user message is the input, not the job.
    const asInput = this.#parts.forced_tool_input && facts.signals.forced_tool;
    let parts = asInput ? { instruction: '', quoted: texts[0]!, rule: 'input:forced_tool', fenced: false } : splitParts(texts[0]!, this.#parts);
    let hits = this.#termHits(parts.instruction);
    // Lookback: a last message too short to tell ("yes, do it", "can you explain that?")
    // borrows the newest earlier user turn that is decisive, unless it opens a new subject
    // ("thanks! btw how long do I boil an egg?" after a regex).
    if (!asInput && !this.#decisive(hits) && !this.#opensNewTopic(parts.instruction)) {
      for (let t = 1; t < texts.length; t++) {
        const earlierParts = splitParts(texts[t]!, this.#parts);
        const earlier = this.#termHits(earlierParts.instruction);
        if (this.#decisive(earlier)) {
          hits = earlier;
          parts = earlierParts;
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
    const lines = instructionLines(parts.instruction);
    const instruction = this.#linesHits(lines);
    const fromInstruction = this.#decisive(instruction);
    for (const id of fromInstruction ? instruction : hits) {
      const e = this.#entries[id]!;
      score[e.bucket] += e.weight;
      (matched[e.bucket] ??= []).push(fromInstruction ? `instruction:${e.term}` : e.term);
    }
    // Quoted material (a chat history to title, a document to answer from, code to edit) counts
    // for a fraction: it says what the job is about, not what the job is.
    const qw = this.#parts.quoted_weight;
    if (!fromInstruction && qw > 0 && parts.quoted !== '') {
      const added = new Float64Array(n);
      for (const id of this.#termHits(parts.quoted)) {
        if (hits.has(id)) continue;
        const e = this.#entries[id]!;
        added[e.bucket] += e.weight * qw;
        (matched[e.bucket] ??= []).push(`quoted:${e.term}`);
      }
      for (let b = 0; b < n; b++) score[b] += Math.min(added[b]!, this.#parts.quoted_max);
    }
    // Job words of a short system prompt (the user message being only the data).
    const sys = this.#system;
    if (sys && sys.max_chars > 0 && sys.weight > 0 && facts.systemText !== '' && facts.systemText.length <= sys.max_chars) {
      for (const id of this.#termHits(facts.systemText)) {
        const e = this.#entries[id]!;
        if (e.weight < sys.min_weight || hits.has(id)) continue;
        score[e.bucket] += e.weight * sys.weight;
        (matched[e.bucket] ??= []).push(`system:${e.term}`);
      }
    }
    // Code in quoted material (a chat history to title, a document) is not code the user brought:
    // code_block counts a ``` block only among the instruction's own material, inline_code only
    // in the instruction's text. When an instruction line decided, the rest of the message is
    // the material it is about (a CSV dump's snake_case keys are data, not code).
    const ownText = fromInstruction ? lines.join('\n') : parts.rule === 'whole' ? null : parts.instruction;
    const signals =
      ownText === null || !(facts.signals.inline_code || facts.signals.code_block)
        ? facts.signals
        : { ...facts.signals, code_block: facts.signals.code_block && !fromInstruction && parts.fenced, inline_code: facts.signals.inline_code && hasInlineCode(ownText) };
    // Tools that are not an agent at work: a voice assistant's device control (Home Assistant's
    // HassTurnOn…), or a chat app's helpers offered with every conversation (web search, a calculator).
    const deviceTools = this.#deviceTools !== undefined && signals.tools && offersAny(facts.toolNames, this.#deviceTools);
    const chatTools = this.#chatTools !== undefined && signals.tools && offersOnly(facts.toolNames, this.#chatTools);
    for (let b = 0; b < n; b++) {
      for (const [s, w] of this.#signalWeights[b]!) {
        if (s === 'device_tools' ? deviceTools : s === 'chat_tools' ? chatTools : signals[s]) {
          score[b] += w;
          (matched[b] ??= []).push(`signal:${s}`);
        }
      }
    }

    // Similarity: when the keyword evidence is weak or tied, the nearest example prompts of the
    // policy add weight × similarity to their buckets.
    let nearest: Neighbour[] = [];
    const sim = this.#similarity;
    if (this.#examples && sim) {
      const [first, second] = this.#topTwo(score);
      if (first < sim.consult_below || (first > 0 && first === second)) {
        const query = parts.instruction.trim() !== '' ? parts.instruction : parts.quoted;
        const found = this.#examples.nearest(query, NEAREST_SHOWN);
        nearest = found.neighbours;
        for (let b = 0; b < n; b++) {
          const s = found.best[b]!;
          if (s < sim.min_similarity) continue;
          score[b] += sim.weight * s;
          const example = nearest.find((x) => x.bucket === this.#buckets[b]);
          (matched[b] ??= []).push(`similar:${Math.round(s * 100) / 100}${example ? ' "' + clip(example.example, 60) + '"' : ''}`);
        }
      }
    }

    // A job done on the user's own code (a rewrite or translation of a ``` block of code, an
    // editor's code tag) is a code edit: the job's score moves to the bucket that edits code.
    // The tags are looked for only when such a job scored.
    const codeJob = this.#onCode.some((to, b) => to !== -1 && score[b]! > 0);
    if (codeJob && (signals.code_block || hasCodeTag(texts[turn]!, this.#parts))) {
      for (let b = 0; b < n; b++) {
        const to = this.#onCode[b]!;
        if (to === -1 || score[b]! <= 0) continue;
        score[to] += score[b]!;
        score[b] = 0;
        (matched[to] ??= []).push(`code_edit:${this.#buckets[b]}`);
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
    const instructionText = parts.instruction;
    return {
      bucket: best === -1 ? this.#defaultBucket : this.#buckets[best]!,
      scores,
      matched: matchedOut,
      reason: best === -1 ? 'default_bucket' : 'bucket_match',
      turn: best === -1 ? 0 : turn,
      part: parts.rule,
      // Read by explain only: built when asked, not on every request.
      get text() {
        return clip(instructionText.slice(0, 4 * TEXT_SHOWN).trim().replace(/\s+/g, ' '), TEXT_SHOWN);
      },
      nearest,
    };
  }

  #topTwo(score: Float64Array): [number, number] {
    let first = 0;
    let second = 0;
    for (const s of score) {
      if (s > first) {
        second = first;
        first = s;
      } else if (s > second) second = s;
    }
    return [first, second];
  }

  /** Terms on the lines that may be a long text's instruction (instructionLines). */
  #linesHits(lines: string[]): Set<number> {
    const hits = new Set<number>();
    for (const line of lines) this.#terms.scanInto(line, hits);
    return hits;
  }

  /** Whether these hits decide a bucket on their own, without looking at earlier turns. */
  #decisive(hits: Set<number>): boolean {
    if (this.#lookbackBelow <= 0) return hits.size > 0;
    for (const id of hits) if (this.#entries[id]!.weight >= this.#lookbackBelow) return true;
    return false;
  }

  /** Distinct term ids found in `text`, in first-seen order. */
  #termHits(text: string): Set<number> {
    const hits = new Set<number>();
    if (text !== '') this.#terms.scanInto(text, hits);
    return hits;
  }

  /** The message opens with a new-topic phrase (classifier.new_topic) in its first characters. */
  #opensNewTopic(text: string): boolean {
    if (this.#newTopic === undefined || text === '') return false;
    const found = new Set<number>();
    this.#newTopic.scanInto(text.length > NEW_TOPIC_CHARS ? text.slice(0, NEW_TOPIC_CHARS) : text, found);
    return found.size > 0;
  }
}

/**
 * The lines of a long text that may be its instruction: the first and the last, each at most
 * INSTRUCTION_CHARS, the last unless it is a listing's last item. None in a short text.
 */
export function instructionLines(text: string): string[] {
  const lines: string[] = [];
  if (text.length < LONG_TEXT_CHARS) return lines;
  const trimmed = text.trim();
  const firstEnd = trimmed.indexOf('\n');
  const lastStart = trimmed.lastIndexOf('\n');
  if (firstEnd > 0 && firstEnd <= INSTRUCTION_CHARS) lines.push(trimmed.slice(0, firstEnd));
  if (lastStart !== -1 && trimmed.length - lastStart <= INSTRUCTION_CHARS && !continuesListing(trimmed, lastStart)) lines.push(trimmed.slice(lastStart + 1));
  return lines;
}

/** Lines above the last one compared with it, and how many must look alike, to call them a listing. */
const LISTING_LINES = 5;
const LISTING_ALIKE = 3;
/** Lines read upwards at most, blank ones included: a text of blank lines is not walked whole. */
const LISTING_READ = 20;
/** Characters of a line's start that make its shape. */
const SHAPE_CHARS = 8;

/**
 * Whether the last line of `text` (from `lastStart + 1`) is the last item of a listing rather
 * than an instruction below pasted material: its start has a digit or a mark in it (a line
 * number, a timestamp, a bullet, a CSV key) and at least LISTING_ALIKE of the LISTING_LINES
 * non-blank lines above it start the same way. A line that starts with a plain word
 * ("Summarize the above") never continues a listing.
 */
export function continuesListing(text: string, lastStart: number): boolean {
  const shape = lineShape(text, lastStart + 1);
  if (!/[^a]/.test(shape)) return false;
  let alike = 0;
  let seen = 0;
  for (let end = lastStart, read = 0; end > 0 && seen < LISTING_LINES && read < LISTING_READ; read++) {
    const start = text.lastIndexOf('\n', end - 1) + 1;
    if (text.slice(start, end).trim() !== '') {
      seen++;
      if (lineShape(text, start) === shape) alike++;
    }
    end = start - 1;
  }
  return alike >= LISTING_ALIKE;
}

/**
 * The shape of a line's start: its first SHAPE_CHARS characters up to the first space, letters
 * as `a`, digits as `9`, other characters as they are, runs of one class written once
 * (`70: Nov` → `9:`, `2026-11-20` → `9-9-`, `- [ ]` → `-`, `sensor.pv_w,…` → `a.a`).
 */
function lineShape(text: string, at: number): string {
  let shape = '';
  while (at < text.length && (text.charCodeAt(at) === 32 || text.charCodeAt(at) === 9)) at++;
  for (let i = at; i < at + SHAPE_CHARS && i < text.length; i++) {
    const ch = text[i]!;
    if (isSpace(ch.charCodeAt(0))) break;
    const cls = ch >= '0' && ch <= '9' ? '9' : ch.toLowerCase() !== ch.toUpperCase() ? 'a' : ch;
    if (!shape.endsWith(cls)) shape += cls;
  }
  return shape;
}

function clip(text: string, chars: number): string {
  return text.length <= chars ? text : text.slice(0, chars - 1) + '…';
}

/** Tool names to look for: exact names and name prefixes (a pattern ending in *), lower-cased. */
interface ToolNamePatterns {
  exact: Set<string>;
  prefixes: string[];
}

function toolNamePatterns(patterns: string[]): ToolNamePatterns {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    const lower = p.toLowerCase();
    if (lower.endsWith('*')) prefixes.push(lower.slice(0, -1));
    else exact.add(lower);
  }
  return { exact, prefixes };
}

/** Whether the patterns name one of the tools. */
function offersAny(names: readonly string[], patterns: ToolNamePatterns): boolean {
  for (const name of names) if (named(name, patterns)) return true;
  return false;
}

/** Whether the patterns name every tool (and there is one). */
function offersOnly(names: readonly string[], patterns: ToolNamePatterns): boolean {
  for (const name of names) if (!named(name, patterns)) return false;
  return names.length > 0;
}

/** Whether the patterns name this tool. */
function named(name: string, patterns: ToolNamePatterns): boolean {
  const lower = name.toLowerCase();
  if (patterns.exact.has(lower)) return true;
  for (const prefix of patterns.prefixes) if (lower.startsWith(prefix)) return true;
  return false;
}
