// Chat completions answers → OpenAI Responses, as one state machine fed with chat deltas.
// Streamed, it emits the whole lifecycle Codex waits for: response.created, response.in_progress,
// then per output item output_item.added → (content_part.added → *.delta* → *.done →
// content_part.done) → output_item.done, and finally response.completed (or .incomplete) with
// the full output array and usage. Every event carries sequence_number and output_index.
// Non-streamed, the same machine builds the response object.
import { completionDeltas, TranslatedStream, sseEvent, type ChatDelta } from './chat-deltas.ts';
import { newId } from './ids.ts';

export interface ResponsesContext {
  model: string;
  maxTokens: number;
  inputEstimate: number;
  /** Flattened tool name → its namespace and own name (Codex `namespace` tools). */
  toolNames: Map<string, { namespace: string; name: string }>;
  /** Free-form (`custom`) tools, sent upstream as functions taking {"input": string}. */
  customTools?: Set<string>;
  /** Echoed request fields (tools, tool_choice, temperature, ...). */
  echo: Record<string, unknown>;
}

type Item =
  | { type: 'message'; id: string; status: string; role: 'assistant'; content: Array<{ type: 'output_text'; text: string; annotations: unknown[]; logprobs: unknown[] }> }
  | { type: 'reasoning'; id: string; status: string; summary: unknown[]; content: Array<{ type: 'reasoning_text'; text: string }> }
  | { type: 'function_call'; id: string; status: string; call_id: string; name: string; arguments: string; namespace?: string }
  | { type: 'custom_tool_call'; id: string; status: string; call_id: string; name: string; input: string; args: string };

interface ToolState {
  id: string | undefined;
  name: string | undefined;
  args: string;
  item: number | null;
}

export class ResponsesAnswer {
  readonly id = newId('resp_');
  readonly createdAt = Math.floor(Date.now() / 1000);
  readonly #ctx: ResponsesContext;
  readonly #items: Item[] = [];
  #open: number | null = null;
  readonly #tools = new Map<number, ToolState>();
  #finish: string | undefined;
  #usage = { prompt: -1, completion: -1, cached: 0, reasoning: 0 };
  #outChars = 0;
  #seq = 0;
  #started = false;
  #ended = false;
  #failed: string | null = null;
  #events = '';

  constructor(ctx: ResponsesContext) {
    this.#ctx = ctx;
  }

  #emit(type: string, data: Record<string, unknown>): void {
    this.#events += sseEvent(type, { type, sequence_number: this.#seq++, ...data });
  }

  #drain(): string {
    const out = this.#events;
    this.#events = '';
    return out;
  }

  #begin(): void {
    if (this.#started) return;
    this.#started = true;
    const r = this.response('in_progress');
    this.#emit('response.created', { response: r });
    this.#emit('response.in_progress', { response: r });
  }

  start(): string {
    this.#begin();
    return this.#drain();
  }

  feed(deltas: ChatDelta[]): string {
    this.#begin();
    for (const d of deltas) this.#apply(d);
    return this.#drain();
  }

  #apply(d: ChatDelta): void {
    if (this.#ended) return;
    switch (d.kind) {
      case 'text':
        this.#outChars += d.text.length;
        return this.#text(d.text);
      case 'reasoning':
        this.#outChars += d.text.length;
        return this.#reasoning(d.text);
      case 'tool':
        this.#outChars += d.args.length;
        return this.#tool(d);
      case 'finish':
        this.#finish = d.reason;
        return;
      case 'usage':
        this.#usage = { prompt: d.prompt, completion: d.completion, cached: d.cached, reasoning: 0 };
        return;
      case 'done':
        return this.#end();
      default:
        return;
    }
  }

  #openItem(item: Item): number {
    this.#closeOpen();
    const index = this.#items.length;
    this.#items.push(item);
    this.#open = index;
    const shell = item.type === 'message' || item.type === 'reasoning' ? { ...item, content: [] } : item.type === 'custom_tool_call' ? publicCustom({ ...item, input: '' }) : { ...item, arguments: '' };
    this.#emit('response.output_item.added', { output_index: index, item: shell });
    if (item.type === 'message') this.#emit('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
    if (item.type === 'reasoning') this.#emit('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'reasoning_text', text: '' } });
    return index;
  }

  #closeOpen(): void {
    if (this.#open === null) return;
    const index = this.#open;
    const item = this.#items[index]!;
    item.status = 'completed';
    if (item.type === 'message') {
      const part = item.content[0]!;
      this.#emit('response.output_text.done', { item_id: item.id, output_index: index, content_index: 0, text: part.text, logprobs: [] });
      this.#emit('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part });
    } else if (item.type === 'reasoning') {
      const part = item.content[0]!;
      this.#emit('response.reasoning_text.done', { item_id: item.id, output_index: index, content_index: 0, text: part.text });
      this.#emit('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part });
    } else if (item.type === 'custom_tool_call') {
      // The upstream streamed {"input": "..."} for a free-form tool: the input goes out whole.
      item.input = customInput(item.args);
      if (item.input !== '') this.#emit('response.custom_tool_call_input.delta', { item_id: item.id, output_index: index, delta: item.input });
      this.#emit('response.custom_tool_call_input.done', { item_id: item.id, output_index: index, input: item.input });
    } else {
      this.#emit('response.function_call_arguments.done', { item_id: item.id, output_index: index, name: item.name, arguments: item.arguments });
    }
    this.#emit('response.output_item.done', { output_index: index, item: item.type === 'custom_tool_call' ? publicCustom(item) : item });
    this.#open = null;
  }

  #current<T extends Item['type']>(type: T): Extract<Item, { type: T }> | undefined {
    const item = this.#open === null ? undefined : this.#items[this.#open];
    return item && item.type === type ? (item as Extract<Item, { type: T }>) : undefined;
  }

  #text(text: string): void {
    if (text === '') return;
    let item = this.#current('message');
    if (!item) {
      item = { type: 'message', id: newId('msg_'), status: 'in_progress', role: 'assistant', content: [{ type: 'output_text', text: '', annotations: [], logprobs: [] }] };
      this.#openItem(item);
    }
    item.content[0]!.text += text;
    this.#emit('response.output_text.delta', { item_id: item.id, output_index: this.#open, content_index: 0, delta: text, logprobs: [] });
  }

  #reasoning(text: string): void {
    if (text === '') return;
    let item = this.#current('reasoning');
    if (!item) {
      item = { type: 'reasoning', id: newId('rs_'), status: 'in_progress', summary: [], content: [{ type: 'reasoning_text', text: '' }] };
      this.#openItem(item);
    }
    item.content[0]!.text += text;
    this.#emit('response.reasoning_text.delta', { item_id: item.id, output_index: this.#open, content_index: 0, delta: text });
  }

  #tool(d: Extract<ChatDelta, { kind: 'tool' }>): void {
    let t = this.#tools.get(d.index);
    if (!t) {
      t = { id: undefined, name: undefined, args: '', item: null };
      this.#tools.set(d.index, t);
    }
    t.id ??= d.id;
    t.name ??= d.name;
    t.args += d.args;
    if (t.item === null) {
      if (t.name !== undefined) this.#openTool(t);
      return;
    }
    const item = this.#items[t.item]!;
    if (item.type === 'custom_tool_call') {
      item.args += d.args;
      return;
    }
    if (item.type !== 'function_call' || d.args === '' || this.#open !== t.item) return;
    item.arguments += d.args;
    this.#emit('response.function_call_arguments.delta', { item_id: item.id, output_index: t.item, delta: d.args });
  }

  #openTool(t: ToolState): void {
    const flat = t.name ?? 'unknown_tool';
    if (this.#ctx.customTools?.has(flat)) {
      t.item = this.#openItem({ type: 'custom_tool_call', id: newId('ctc_'), status: 'in_progress', call_id: t.id ?? newId('call_'), name: flat, input: '', args: t.args });
      return;
    }
    const ns = this.#ctx.toolNames.get(flat);
    const item: Extract<Item, { type: 'function_call' }> = { type: 'function_call', id: newId('fc_'), status: 'in_progress', call_id: t.id ?? newId('call_'), name: ns ? ns.name : flat, arguments: '' };
    if (ns) item.namespace = ns.namespace;
    t.item = this.#openItem(item);
    if (t.args !== '') {
      item.arguments = t.args;
      this.#emit('response.function_call_arguments.delta', { item_id: item.id, output_index: t.item, delta: t.args });
    }
  }

  #end(): void {
    if (this.#ended) return;
    for (const t of this.#tools.values()) if (t.item === null) this.#openTool(t);
    this.#closeOpen();
    this.#ended = true;
    const r = this.response();
    this.#emit(r.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: r });
  }

  finish(): string {
    this.#begin();
    this.#end();
    return this.#drain();
  }

  /** The upstream failed mid-stream: response.failed carries the error; the stream then closes. */
  fail(message: string): string {
    this.#begin();
    this.#ended = true;
    this.#failed = message;
    this.#emit('response.failed', { response: this.response() });
    return this.#drain();
  }

  usage(): Record<string, unknown> {
    const input = this.#usage.prompt >= 0 ? this.#usage.prompt : this.#ctx.inputEstimate;
    const output = this.#usage.completion >= 0 ? this.#usage.completion : Math.ceil(this.#outChars / 4);
    return { input_tokens: input, input_tokens_details: { cached_tokens: this.#usage.cached }, output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output };
  }

  #status(): 'completed' | 'incomplete' | 'failed' {
    if (this.#failed !== null) return 'failed';
    if (this.#finish === 'length' && !this.#items.some((i) => i.type === 'function_call')) return 'incomplete';
    return 'completed';
  }

  /** The response object (status `in_progress` for the opening events). */
  response(status?: 'in_progress'): Record<string, any> {
    const s = status ?? this.#status();
    return {
      id: this.id,
      object: 'response',
      created_at: this.createdAt,
      status: s,
      error: this.#failed !== null ? { code: 'server_error', message: this.#failed } : null,
      incomplete_details: s === 'incomplete' ? { reason: this.#finish === 'content_filter' ? 'content_filter' : 'max_output_tokens' } : null,
      model: this.#ctx.model,
      output: s === 'in_progress' ? [] : this.#items.map((i) => (i.type === 'custom_tool_call' ? publicCustom(i) : i)),
      usage: s === 'in_progress' ? null : this.usage(),
      ...this.#ctx.echo,
    };
  }
}

/** A custom tool call as the client sees it (without the upstream's argument text). */
function publicCustom(item: Extract<Item, { type: 'custom_tool_call' }>): Record<string, unknown> {
  const { args: _args, ...rest } = item;
  return rest;
}

function customInput(args: string): string {
  try {
    const v = JSON.parse(args);
    if (typeof v?.input === 'string') return v.input;
  } catch {
    /* not the wrapper: the text itself */
  }
  return args;
}

/** A streamed translation: upstream chat SSE bytes in, Responses events out. */
export class ResponsesStream extends TranslatedStream<ResponsesAnswer> {
  constructor(ctx: ResponsesContext) {
    super(new ResponsesAnswer(ctx));
  }
}

export function responsesObject(completion: unknown, ctx: ResponsesContext): Record<string, unknown> {
  const a = new ResponsesAnswer(ctx);
  a.feed(completionDeltas(completion));
  return a.response();
}
