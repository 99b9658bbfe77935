// Reads an upstream chat completions answer (one JSON object, or SSE chunks) as a flat list
// of deltas that every client protocol translates from: text, reasoning, tool-call pieces,
// the finish, and usage. Pure; the stream reader keeps only the bytes of an unfinished frame.

export type ChatDelta =
  | { kind: 'meta'; id: string | undefined; model: string | undefined }
  | { kind: 'text'; text: string }
  | { kind: 'reasoning'; text: string }
  | { kind: 'tool'; index: number; id: string | undefined; name: string | undefined; args: string }
  | { kind: 'finish'; reason: string; matchedStop: string | undefined }
  | { kind: 'usage'; prompt: number; completion: number; cached: number }
  | { kind: 'done' };

type Obj = Record<string, any>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** vLLM names it `reasoning_content` (older) or `reasoning` (newer); llama.cpp `reasoning_content`. */
function reasoningOf(m: Obj): string {
  const r = m.reasoning_content ?? m.reasoning;
  return typeof r === 'string' ? r : '';
}

function usageDelta(u: unknown): ChatDelta | null {
  if (!isObj(u)) return null;
  const cached = isObj(u.prompt_tokens_details) && typeof u.prompt_tokens_details.cached_tokens === 'number' ? u.prompt_tokens_details.cached_tokens : 0;
  return { kind: 'usage', prompt: numOr0(u.prompt_tokens), completion: numOr0(u.completion_tokens), cached };
}

function numOr0(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** vLLM reports the stop string that ended generation as `stop_reason` (a string; a token id is a number). */
function finishDelta(choice: Obj): ChatDelta | null {
  const reason = choice.finish_reason;
  if (typeof reason !== 'string' || reason === '') return null;
  return { kind: 'finish', reason, matchedStop: typeof choice.stop_reason === 'string' ? choice.stop_reason : undefined };
}

/** The deltas of one streamed chat chunk (only the first choice is read: these protocols have one). */
export function chunkDeltas(chunk: unknown): ChatDelta[] {
  if (!isObj(chunk)) return [];
  const out: ChatDelta[] = [{ kind: 'meta', id: typeof chunk.id === 'string' ? chunk.id : undefined, model: typeof chunk.model === 'string' ? chunk.model : undefined }];
  const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
  if (isObj(choice)) {
    const d = isObj(choice.delta) ? choice.delta : {};
    const reasoning = reasoningOf(d);
    if (reasoning !== '') out.push({ kind: 'reasoning', text: reasoning });
    if (typeof d.content === 'string' && d.content !== '') out.push({ kind: 'text', text: d.content });
    if (Array.isArray(d.tool_calls)) {
      d.tool_calls.forEach((tc: unknown, i: number) => {
        if (!isObj(tc)) return;
        const fn = isObj(tc.function) ? tc.function : {};
        out.push({
          kind: 'tool',
          index: typeof tc.index === 'number' ? tc.index : i,
          id: typeof tc.id === 'string' && tc.id !== '' ? tc.id : undefined,
          name: typeof fn.name === 'string' && fn.name !== '' ? fn.name : undefined,
          args: typeof fn.arguments === 'string' ? fn.arguments : '',
        });
      });
    }
    const fin = finishDelta(choice);
    if (fin) out.push(fin);
  }
  const usage = usageDelta(chunk.usage);
  if (usage) out.push(usage);
  return out;
}

/** The deltas of a whole (non-streamed) chat completion, in the order a stream would carry them. */
export function completionDeltas(completion: unknown): ChatDelta[] {
  if (!isObj(completion)) return [{ kind: 'done' }];
  const out: ChatDelta[] = [{ kind: 'meta', id: typeof completion.id === 'string' ? completion.id : undefined, model: typeof completion.model === 'string' ? completion.model : undefined }];
  const choice = Array.isArray(completion.choices) ? completion.choices[0] : undefined;
  if (isObj(choice)) {
    const m = isObj(choice.message) ? choice.message : isObj(choice) && typeof choice.text === 'string' ? { content: choice.text } : {};
    const reasoning = reasoningOf(m);
    if (reasoning !== '') out.push({ kind: 'reasoning', text: reasoning });
    if (typeof m.content === 'string' && m.content !== '') out.push({ kind: 'text', text: m.content });
    if (Array.isArray(m.tool_calls)) {
      m.tool_calls.forEach((tc: unknown, i: number) => {
        if (!isObj(tc)) return;
        const fn = isObj(tc.function) ? tc.function : {};
        out.push({ kind: 'tool', index: i, id: typeof tc.id === 'string' ? tc.id : undefined, name: typeof fn.name === 'string' ? fn.name : undefined, args: typeof fn.arguments === 'string' ? fn.arguments : '' });
      });
    }
    const fin = finishDelta(choice);
    if (fin) out.push(fin);
  }
  const usage = usageDelta(completion.usage);
  if (usage) out.push(usage);
  out.push({ kind: 'done' });
  return out;
}

/**
 * Splits an SSE byte stream into chat deltas. Frames may arrive split across chunks; only the
 * unfinished tail is kept. A frame that is not JSON is skipped (comments, keep-alives).
 */
export class ChatSseReader {
  #pending = '';
  readonly #decoder = new TextDecoder();

  push(chunk: Uint8Array): ChatDelta[] {
    this.#pending += this.#decoder.decode(chunk, { stream: true });
    const out: ChatDelta[] = [];
    let cut = frameEnd(this.#pending);
    while (cut !== null) {
      const frame = this.#pending.slice(0, cut.at);
      this.#pending = this.#pending.slice(cut.at + cut.len);
      readFrame(frame, out);
      cut = frameEnd(this.#pending);
    }
    return out;
  }

  /** What remains at end of stream (a last frame without its blank line). */
  end(): ChatDelta[] {
    const out: ChatDelta[] = [];
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = '';
    if (rest.trim() !== '') readFrame(rest, out);
    return out;
  }
}

function frameEnd(text: string): { at: number; len: number } | null {
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  if (lf === -1 && crlf === -1) return null;
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { at: crlf, len: 4 };
  return { at: lf, len: 2 };
}

function readFrame(frame: string, out: ChatDelta[]): void {
  let data = '';
  for (const line of frame.split(/\r?\n/)) {
    if (line.startsWith('data:')) data += (data === '' ? '' : '\n') + line.slice(line.charCodeAt(5) === 0x20 ? 6 : 5);
  }
  if (data === '') return;
  if (data.trim() === '[DONE]') {
    out.push({ kind: 'done' });
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return;
  }
  for (const d of chunkDeltas(parsed)) out.push(d);
}

/** One SSE event as written to a client. */
export function sseEvent(name: string | null, data: unknown): string {
  return `${name === null ? '' : `event: ${name}\n`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/** An answer of another protocol as a state machine fed chat deltas (anthropic-answer.ts, responses-answer.ts). */
export interface DeltaAnswer {
  start(): string;
  feed(deltas: ChatDelta[]): string;
  finish(): string;
  fail(message: string): string;
}

/** A streamed translation: upstream chat SSE bytes in, the answer's events out. */
export class TranslatedStream<A extends DeltaAnswer> {
  readonly #reader = new ChatSseReader();
  readonly answer: A;

  constructor(answer: A) {
    this.answer = answer;
  }

  start(): string {
    return this.answer.start();
  }

  push(chunk: Buffer): string {
    return this.answer.feed(this.#reader.push(chunk));
  }

  end(): string {
    return this.answer.feed(this.#reader.end()) + this.answer.finish();
  }

  fail(message: string): string {
    return this.answer.feed(this.#reader.end()) + this.answer.fail(message);
  }
}
