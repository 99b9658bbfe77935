// OpenAI Responses request → the router's chat request. Pure. What it does to the shape:
// - `instructions` and every system/developer input item become one leading system message
//   (local chat templates reject `developer` and late system messages);
// - function_call items are grouped into one assistant message with tool_calls, each followed
//   by its function_call_output as a `tool` message; images in an output go to a user message;
// - reasoning items (encrypted, another model's) are dropped;
// - `namespace` tools are flattened to `<namespace>__<name>` functions (reversed on output);
//   hosted tools (web_search, file_search, ...) are dropped;
// - `previous_response_id` is refused: the router keeps no responses (send the full history).
import type { ChatBody, ChatMessage, ContentPart } from '../classify/request-facts.ts';
import { RouterError } from '../errors.ts';
import { pairToolCalls } from './tool-pairs.ts';

export interface ResponsesRequest {
  chat: ChatBody;
  model: string;
  stream: boolean;
  maxTokens: number;
  toolNames: Map<string, { namespace: string; name: string }>;
  customTools: Set<string>;
  /** Request fields echoed in the response object. */
  echo: Record<string, unknown>;
}

type Obj = Record<string, any>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(param: string, message: string): never {
  throw new RouterError('invalid_request', `${param}: ${message}`, { param });
}

function imageUrlPart(p: Obj, at: string): ContentPart {
  const url = typeof p.image_url === 'string' ? p.image_url : isObj(p.image_url) && typeof p.image_url.url === 'string' ? p.image_url.url : undefined;
  if (url === undefined || url === '') bad(`${at}.image_url`, 'must be a URL or data URL (file_id is not supported by this router)');
  return { type: 'image_url', image_url: { url, ...(typeof p.detail === 'string' ? { detail: p.detail } : {}) } };
}

function parts(content: unknown, at: string): ContentPart[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) bad(`${at}.content`, 'must be a string or an array of content parts');
  const out: ContentPart[] = [];
  content.forEach((p, j) => {
    const pat = `${at}.content[${j}]`;
    if (!isObj(p) || typeof p.type !== 'string') bad(pat, 'must be a content part with a "type"');
    if (p.type === 'input_text' || p.type === 'output_text' || p.type === 'text' || p.type === 'summary_text') {
      if (typeof p.text !== 'string') bad(`${pat}.text`, 'must be a string');
      if (p.text !== '') out.push({ type: 'text', text: p.text });
    } else if (p.type === 'input_image') out.push(imageUrlPart(p, pat));
    else if (p.type === 'refusal') {
      if (typeof p.refusal === 'string') out.push({ type: 'text', text: p.refusal });
    } else bad(`${pat}.type`, `unsupported content part "${p.type}"`);
  });
  return out;
}

function textOf(ps: ContentPart[]): string {
  return ps.map((p) => p.text ?? '').join('\n');
}

export function responsesToChat(body: unknown): ResponsesRequest {
  if (!isObj(body)) bad('body', 'must be a JSON object');
  if (typeof body.model !== 'string' || body.model === '') bad('model', 'is required and must be a non-empty string');
  if (body.previous_response_id !== undefined && body.previous_response_id !== null) bad('previous_response_id', 'this router stores no responses; send the whole conversation in "input" (store: false)');
  if (body.max_output_tokens !== undefined && body.max_output_tokens !== null && (typeof body.max_output_tokens !== 'number' || !Number.isInteger(body.max_output_tokens) || body.max_output_tokens < 1)) bad('max_output_tokens', 'must be a positive integer');

  const system: string[] = [];
  if (typeof body.instructions === 'string' && body.instructions !== '') system.push(body.instructions);
  const turns: ChatMessage[] = [];
  let calls: ChatMessage | null = null;
  const input = typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : body.input;
  if (!Array.isArray(input) || input.length === 0) bad('input', 'is required: a string or a non-empty array of items');

  // Images from tool outputs follow the whole run of tool messages, which must stay together.
  let toolImages: ContentPart[] = [];
  const flushImages = () => {
    if (toolImages.length > 0) turns.push({ role: 'user', content: toolImages });
    toolImages = [];
  };
  input.forEach((item: unknown, i: number) => {
    const at = `input[${i}]`;
    if (!isObj(item)) bad(at, 'must be an object');
    const type = item.type ?? (typeof item.role === 'string' ? 'message' : undefined);
    if (type !== 'function_call_output' && type !== 'custom_tool_call_output') flushImages();
    switch (type) {
      case 'message': {
        const ps = parts(item.content, at);
        if (item.role === 'system' || item.role === 'developer') {
          const t = textOf(ps);
          if (t !== '') system.push(t);
        } else if (item.role === 'user') {
          turns.push({ role: 'user', content: ps.every((p) => p.type === 'text') ? textOf(ps) : ps });
          calls = null;
        } else if (item.role === 'assistant') {
          calls = { role: 'assistant', content: textOf(ps) };
          turns.push(calls);
        } else bad(`${at}.role`, 'must be user, assistant, system or developer');
        return;
      }
      case 'function_call':
      case 'custom_tool_call': {
        if (typeof item.call_id !== 'string' || typeof item.name !== 'string') bad(at, 'function_call needs call_id and name');
        const name = typeof item.namespace === 'string' && item.namespace !== '' ? `${item.namespace}__${item.name}` : item.name;
        const args = type === 'custom_tool_call' ? JSON.stringify({ input: String(item.input ?? '') }) : typeof item.arguments === 'string' ? item.arguments : JSON.stringify(item.arguments ?? {});
        if (!calls || calls.role !== 'assistant') {
          calls = { role: 'assistant', content: null };
          turns.push(calls);
        }
        const list = (calls.tool_calls as unknown[] | undefined) ?? [];
        list.push({ id: item.call_id, type: 'function', function: { name, arguments: args } });
        calls.tool_calls = list;
        return;
      }
      case 'function_call_output':
      case 'custom_tool_call_output': {
        if (typeof item.call_id !== 'string') bad(`${at}.call_id`, 'must be a string');
        const out = item.output;
        const ps = typeof out === 'string' ? [{ type: 'text', text: out }] : parts(out, at.concat('.output'));
        const images = ps.filter((p) => p.type === 'image_url');
        turns.push({ role: 'tool', tool_call_id: item.call_id, content: textOf(ps.filter((p) => p.type === 'text')) });
        toolImages.push(...images);
        return;
      }
      case 'reasoning':
      case 'item_reference':
        return;
      default:
        bad(`${at}.type`, `unsupported input item "${String(type)}"`);
    }
  });

  flushImages();
  const messages: ChatMessage[] = [];
  if (system.length > 0) messages.push({ role: 'system', content: system.join('\n\n') });
  // A text-only assistant message left with content null never happens; an assistant made only
  // of calls keeps content null, which every chat server accepts.
  messages.push(...pairToolCalls(turns));

  const stream = body.stream === true;
  const maxTokens = typeof body.max_output_tokens === 'number' ? body.max_output_tokens : 0;
  const chat: ChatBody = { model: body.model, messages };
  if (maxTokens > 0) chat.max_tokens = maxTokens;
  if (stream) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  const toolNames = new Map<string, { namespace: string; name: string }>();
  const customTools = new Set<string>();
  const tools = chatTools(body.tools, toolNames, customTools);
  if (tools.length > 0) {
    chat.tools = tools;
    const tc = body.tool_choice;
    if (tc === 'auto' || tc === 'none' || tc === 'required') chat.tool_choice = tc;
    else if (isObj(tc) && tc.type === 'function' && typeof tc.name === 'string') chat.tool_choice = { type: 'function', function: { name: tc.name } };
    if (typeof body.parallel_tool_calls === 'boolean') chat.parallel_tool_calls = body.parallel_tool_calls;
  }
  for (const k of ['temperature', 'top_p'] as const) if (typeof body[k] === 'number') chat[k] = body[k];
  const format = isObj(body.text) && isObj(body.text.format) ? body.text.format : undefined;
  if (format?.type === 'json_schema') chat.response_format = { type: 'json_schema', json_schema: { name: format.name ?? 'output', schema: format.schema, ...(typeof format.strict === 'boolean' ? { strict: format.strict } : {}) } };
  else if (format?.type === 'json_object') chat.response_format = { type: 'json_object' };
  if (isObj(body.metadata) && typeof body.metadata.bucket === 'string') chat.metadata = { bucket: body.metadata.bucket };

  const echo: Record<string, unknown> = {
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    max_output_tokens: maxTokens > 0 ? maxTokens : null,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    temperature: body.temperature ?? null,
    top_p: body.top_p ?? null,
    tool_choice: body.tool_choice ?? 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    metadata: isObj(body.metadata) ? body.metadata : {},
    store: false,
    text: isObj(body.text) ? body.text : { format: { type: 'text' } },
  };
  return { chat, model: body.model, stream, maxTokens, toolNames, customTools, echo };
}

function functionTool(t: Obj, name: string): unknown {
  return { type: 'function', function: { name, ...(typeof t.description === 'string' ? { description: t.description } : {}), parameters: isObj(t.parameters) ? t.parameters : { type: 'object', properties: {} } } };
}

function chatTools(tools: unknown, names: Map<string, { namespace: string; name: string }>, custom: Set<string>): unknown[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) bad('tools', 'must be an array');
  const out: unknown[] = [];
  tools.forEach((t, i) => {
    if (!isObj(t)) bad(`tools[${i}]`, 'must be an object');
    if (t.type === 'function') {
      if (typeof t.name !== 'string') bad(`tools[${i}].name`, 'is required');
      out.push(functionTool(t, t.name));
    } else if (t.type === 'namespace' && typeof t.name === 'string' && Array.isArray(t.tools)) {
      for (const inner of t.tools) {
        if (!isObj(inner) || typeof inner.name !== 'string') continue;
        const flat = `${t.name}__${inner.name}`;
        names.set(flat, { namespace: t.name, name: inner.name });
        out.push(functionTool(inner, flat));
      }
    } else if (t.type === 'custom' && typeof t.name === 'string') {
      // A free-form tool (Codex apply_patch) as a function taking one string.
      custom.add(t.name);
      out.push({ type: 'function', function: { name: t.name, ...(typeof t.description === 'string' ? { description: t.description } : {}), parameters: { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] } } });
    }
    // Hosted tools (web_search, file_search, computer_use, ...) cannot run on a local upstream.
  });
  return out;
}
