// Chat completions answers → Anthropic Messages, as one state machine fed with chat deltas.
// Streamed, it emits message_start → (content_block_start → content_block_delta* →
// content_block_stop)* → message_delta → message_stop; non-streamed, the same machine builds
// the message object. Rules (each a bug peers shipped):
// - one block open at a time, closed before the next starts; no empty text block;
// - a tool_use block opens only once the tool's name is known, with `input: {}`, and its
//   arguments go out as input_json_delta;
// - stop_reason is `tool_use` whenever a tool block was emitted, whatever finish_reason said;
// - the stream always ends with message_delta (usage, stop_reason) and message_stop.
import { completionDeltas, TranslatedStream, sseEvent, type ChatDelta } from './chat-deltas.ts';
import { newId } from './ids.ts';

export interface AnswerContext {
  /** The model name the client asked for, echoed back. */
  model: string;
  /** The request's stop sequences, to tell `stop_sequence` from `end_turn`. */
  stopSequences: string[];
  /** The output cap sent upstream, to tell `max_tokens` when the upstream gave no finish. */
  maxTokens: number;
  /** The router's estimate of the prompt, for message_start before the upstream's count. */
  inputEstimate: number;
}

type Block =
  | { type: 'text'; text: string }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown; json: string };

interface ToolState {
  id: string | undefined;
  name: string | undefined;
  args: string;
  block: number | null;
}

export type StopReason = 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'refusal';

export class AnthropicAnswer {
  readonly id = newId('msg_');
  readonly #ctx: AnswerContext;
  readonly #blocks: Block[] = [];
  #open: number | null = null;
  readonly #tools = new Map<number, ToolState>();
  #finish: string | undefined;
  #matchedStop: string | undefined;
  #usage = { prompt: -1, completion: -1, cached: 0 };
  #outChars = 0;
  #started = false;
  #ended = false;
  #events = '';

  constructor(ctx: AnswerContext) {
    this.#ctx = ctx;
  }

  /** message_start, with the prompt estimate as input_tokens (the upstream counts only at the end). */
  start(): string {
    if (this.#started) return '';
    this.#started = true;
    return sseEvent('message_start', {
      type: 'message_start',
      message: { id: this.id, type: 'message', role: 'assistant', model: this.#ctx.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: this.#ctx.inputEstimate, output_tokens: 0 } },
    });
  }

  /** Events for these deltas (the text to write to the client). */
  feed(deltas: ChatDelta[]): string {
    this.#events = this.start();
    for (const d of deltas) this.#apply(d);
    const out = this.#events;
    this.#events = '';
    return out;
  }

  #emit(name: string, data: Record<string, unknown>): void {
    this.#events += sseEvent(name, { type: name, ...data });
  }

  #apply(d: ChatDelta): void {
    if (this.#ended) return;
    switch (d.kind) {
      case 'text':
        this.#outChars += d.text.length;
        return this.#appendText('text', d.text);
      case 'reasoning':
        this.#outChars += d.text.length;
        return this.#appendText('thinking', d.text);
      case 'tool':
        this.#outChars += d.args.length;
        return this.#tool(d);
      case 'finish':
        this.#finish = d.reason;
        this.#matchedStop = d.matchedStop;
        return;
      case 'usage':
        this.#usage = { prompt: d.prompt, completion: d.completion, cached: d.cached };
        return;
      case 'done':
        return this.#end();
      default:
        return;
    }
  }

  #closeOpen(): void {
    if (this.#open === null) return;
    const block = this.#blocks[this.#open]!;
    if (block.type === 'tool_use') block.input = parseInput(block.json);
    this.#emit('content_block_stop', { index: this.#open });
    this.#open = null;
  }

  #startBlock(block: Block): number {
    this.#closeOpen();
    const index = this.#blocks.length;
    this.#blocks.push(block);
    this.#open = index;
    const start = block.type === 'tool_use' ? { type: 'tool_use', id: block.id, name: block.name, input: {} } : block.type === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' };
    this.#emit('content_block_start', { index, content_block: start });
    return index;
  }

  #appendText(type: 'text' | 'thinking', text: string): void {
    if (text === '') return;
    const open = this.#open === null ? undefined : this.#blocks[this.#open];
    if (!open || open.type !== type) this.#startBlock(type === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' });
    const block = this.#blocks[this.#open!]!;
    if (block.type === 'text') {
      block.text += text;
      this.#emit('content_block_delta', { index: this.#open, delta: { type: 'text_delta', text } });
    } else if (block.type === 'thinking') {
      block.thinking += text;
      this.#emit('content_block_delta', { index: this.#open, delta: { type: 'thinking_delta', thinking: text } });
    }
  }

  #tool(d: Extract<ChatDelta, { kind: 'tool' }>): void {
    let t = this.#tools.get(d.index);
    if (!t) {
      t = { id: undefined, name: undefined, args: '', block: null };
      this.#tools.set(d.index, t);
    }
    t.id ??= d.id;
    t.name ??= d.name;
    if (t.block === null) {
      t.args += d.args;
      if (t.name !== undefined) this.#openTool(t);
      return;
    }
    if (d.args === '') return;
    t.args += d.args;
    // Arguments for a tool whose block is already closed cannot be streamed any more: they
    // still reach the final message object, and the block's JSON holds what was sent.
    if (this.#open === t.block) {
      (this.#blocks[t.block] as Extract<Block, { type: 'tool_use' }>).json += d.args;
      this.#emit('content_block_delta', { index: t.block, delta: { type: 'input_json_delta', partial_json: d.args } });
    }
  }

  #openTool(t: ToolState): void {
    const block: Block = { type: 'tool_use', id: t.id ?? newId('toolu_'), name: t.name!, input: {}, json: '' };
    t.block = this.#startBlock(block);
    if (t.args !== '') {
      block.json = t.args;
      this.#emit('content_block_delta', { index: t.block, delta: { type: 'input_json_delta', partial_json: t.args } });
    }
  }

  /** The closing events: open blocks closed, then message_delta and message_stop. Idempotent. */
  #end(): void {
    if (this.#ended) return;
    // A tool whose name never came is still a tool call the model made.
    for (const t of this.#tools.values()) if (t.block === null) {
      t.name ??= 'unknown_tool';
      this.#openTool(t);
    }
    this.#closeOpen();
    this.#ended = true;
    const { reason, sequence } = this.stopReason();
    this.#emit('message_delta', { delta: { stop_reason: reason, stop_sequence: sequence }, usage: this.usage() });
    this.#emit('message_stop', {});
  }

  /** Closing events after a clean end of the upstream stream (no [DONE] needed). */
  finish(): string {
    this.#events = this.start();
    this.#end();
    const out = this.#events;
    this.#events = '';
    return out;
  }

  /** The upstream failed mid-stream: an `error` event, then the stream closes. */
  fail(message: string): string {
    this.#ended = true;
    return sseEvent('error', anthropicErrorBody('api_error', message));
  }

  stopReason(): { reason: StopReason; sequence: string | null } {
    if (this.#blocks.some((b) => b.type === 'tool_use')) return { reason: 'tool_use', sequence: null };
    const f = this.#finish;
    if (f === 'tool_calls' || f === 'function_call') return { reason: 'end_turn', sequence: null };
    if (f === 'length') return { reason: 'max_tokens', sequence: null };
    if (f === 'content_filter') return { reason: 'refusal', sequence: null };
    if (f === 'stop' && this.#matchedStop !== undefined && this.#ctx.stopSequences.includes(this.#matchedStop)) return { reason: 'stop_sequence', sequence: this.#matchedStop };
    if (f === undefined && this.#ctx.maxTokens > 0 && this.usage().output_tokens >= this.#ctx.maxTokens) return { reason: 'max_tokens', sequence: null };
    return { reason: 'end_turn', sequence: null };
  }

  /** Anthropic usage: cached prompt tokens are reported apart from input_tokens. */
  usage(): { input_tokens: number; output_tokens: number; cache_read_input_tokens: number; cache_creation_input_tokens: number } {
    const prompt = this.#usage.prompt >= 0 ? this.#usage.prompt : this.#ctx.inputEstimate;
    const output = this.#usage.completion >= 0 ? this.#usage.completion : Math.ceil(this.#outChars / 4);
    return { input_tokens: Math.max(0, prompt - this.#usage.cached), output_tokens: output, cache_read_input_tokens: this.#usage.cached, cache_creation_input_tokens: 0 };
  }

  /** The whole message, as a non-streamed answer carries it. */
  message(): Record<string, unknown> {
    const { reason, sequence } = this.stopReason();
    const content = this.#blocks.map((b) => (b.type === 'tool_use' ? { type: 'tool_use', id: b.id, name: b.name, input: parseInput(b.json) } : b));
    return { id: this.id, type: 'message', role: 'assistant', model: this.#ctx.model, content, stop_reason: reason, stop_sequence: sequence, usage: this.usage() };
  }
}

/** Tool arguments as the object Anthropic requires (`input` must be an object). */
function parseInput(json: string): unknown {
  if (json.trim() === '') return {};
  try {
    const v = JSON.parse(json);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { _raw_arguments: json };
  }
}

/** A streamed translation: upstream chat SSE bytes in, Anthropic events out. */
export class AnthropicStream extends TranslatedStream<AnthropicAnswer> {
  constructor(ctx: AnswerContext) {
    super(new AnthropicAnswer(ctx));
  }
}

/** A whole chat completion as an Anthropic message. */
export function anthropicMessage(completion: unknown, ctx: AnswerContext): Record<string, unknown> {
  const a = new AnthropicAnswer(ctx);
  a.feed(completionDeltas(completion));
  return a.message();
}

export type AnthropicErrorType = 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'not_found_error' | 'request_too_large' | 'rate_limit_error' | 'api_error' | 'overloaded_error';

export function anthropicErrorBody(type: AnthropicErrorType, message: string): { type: 'error'; error: { type: AnthropicErrorType; message: string } } {
  return { type: 'error', error: { type, message } };
}
