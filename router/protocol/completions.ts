// Legacy completions (`prompt` string) ↔ chat completions. The prompt becomes one user message;
// the answer's text comes back as `choices[0].text`, streamed as text_completion chunks ending
// with a usage chunk and [DONE].
import type { ChatBody } from '../classify/request-facts.ts';
import { RouterError } from '../errors.ts';
import { ChatSseReader, completionDeltas, sseEvent, type ChatDelta } from './chat-deltas.ts';
import { newId } from './ids.ts';

export interface CompletionsRequest {
  chat: ChatBody;
  model: string;
  stream: boolean;
  maxTokens: number;
  /** The client asked for the usage chunk. */
  includeUsage: boolean;
}

type Obj = Record<string, any>;

function bad(param: string, message: string): never {
  throw new RouterError('invalid_request', `${param}: ${message}`, { param });
}

export function completionsToChat(body: unknown): CompletionsRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) bad('body', 'must be a JSON object');
  const b = body as Obj;
  if (typeof b.model !== 'string' || b.model === '') bad('model', 'is required and must be a non-empty string');
  const prompt = Array.isArray(b.prompt) && b.prompt.length === 1 && typeof b.prompt[0] === 'string' ? b.prompt[0] : b.prompt;
  if (typeof prompt !== 'string') bad('prompt', 'must be a string (or an array of one string); token arrays and batches need a native route');
  if (b.n !== undefined && b.n !== 1) bad('n', 'only 1 is supported');
  if (b.echo === true) bad('echo', 'is not supported when translated to chat');
  const maxTokens = typeof b.max_tokens === 'number' ? b.max_tokens : 16;
  const stream = b.stream === true;
  const chat: ChatBody = { model: b.model, messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens };
  if (stream) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  for (const k of ['temperature', 'top_p', 'stop', 'seed', 'presence_penalty', 'frequency_penalty'] as const) if (b[k] !== undefined) chat[k] = b[k];
  return { chat, model: b.model, stream, maxTokens, includeUsage: b.stream_options?.include_usage === true };
}

interface CompletionsContext {
  model: string;
  includeUsage: boolean;
}

function usageBody(d: Extract<ChatDelta, { kind: 'usage' }>): Obj {
  return { prompt_tokens: d.prompt, completion_tokens: d.completion, total_tokens: d.prompt + d.completion };
}

export function completionsObject(completion: unknown, ctx: CompletionsContext): Obj {
  let text = '';
  let finish: string | null = null;
  let usage: Obj | null = null;
  for (const d of completionDeltas(completion)) {
    if (d.kind === 'text') text += d.text;
    else if (d.kind === 'finish') finish = d.reason;
    else if (d.kind === 'usage') usage = usageBody(d);
  }
  return { id: newId('cmpl-'), object: 'text_completion', created: Math.floor(Date.now() / 1000), model: ctx.model, choices: [{ index: 0, text, logprobs: null, finish_reason: finish ?? 'stop' }], usage };
}

export class CompletionsStream {
  readonly #reader = new ChatSseReader();
  readonly #ctx: CompletionsContext;
  readonly #id = newId('cmpl-');
  readonly #created = Math.floor(Date.now() / 1000);
  #usage: Obj | null = null;
  #ended = false;

  constructor(ctx: CompletionsContext) {
    this.#ctx = ctx;
  }

  #chunk(text: string, finish: string | null): string {
    return sseEvent(null, { id: this.#id, object: 'text_completion', created: this.#created, model: this.#ctx.model, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] });
  }

  #feed(deltas: ChatDelta[]): string {
    let out = '';
    for (const d of deltas) {
      if (this.#ended) break;
      if (d.kind === 'text') out += this.#chunk(d.text, null);
      else if (d.kind === 'finish') out += this.#chunk('', d.reason);
      else if (d.kind === 'usage') this.#usage = usageBody(d);
      else if (d.kind === 'done') out += this.#close();
    }
    return out;
  }

  #close(): string {
    if (this.#ended) return '';
    this.#ended = true;
    const usage = this.#ctx.includeUsage && this.#usage ? sseEvent(null, { id: this.#id, object: 'text_completion', created: this.#created, model: this.#ctx.model, choices: [], usage: this.#usage }) : '';
    return usage + 'data: [DONE]\n\n';
  }

  start(): string {
    return '';
  }

  push(chunk: Buffer): string {
    return this.#feed(this.#reader.push(chunk));
  }

  end(): string {
    return this.#feed(this.#reader.end()) + this.#close();
  }

  fail(message: string): string {
    this.#ended = true;
    return sseEvent('error', { error: { message, type: 'server_error', code: 'upstream_error', param: null } });
  }
}
