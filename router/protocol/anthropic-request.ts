// Anthropic Messages request → the router's chat request. Pure. What it does to the shape:
// - `system` (string or text blocks) becomes one leading system message, blocks joined by a
//   blank line, with Claude Code's per-request billing-header block dropped (it changes every
//   turn and would defeat the upstream's prefix cache);
// - `tool_result` blocks become `tool` messages placed right after the assistant's tool calls,
//   before the user's other content; `is_error` results are prefixed "ERROR: "; images inside
//   them move to a following user message (so they still count as images for routing);
// - `tool_use.input` (an object) becomes the chat `arguments` JSON string;
// - thinking blocks from history are dropped, never turned into visible text;
// - `thinking` is sent on only to routes that say how (`routes.<r>.thinking`, protocol/thinking.ts);
//   `metadata` (but for the log's session id) and unknown top-level fields are read, not forwarded.
import type { ChatBody, ChatMessage, ContentPart } from '../classify/request-facts.ts';
import { RouterError } from '../errors.ts';
import { pairToolCalls } from './tool-pairs.ts';

export interface AnthropicRequest {
  chat: ChatBody;
  model: string;
  stream: boolean;
  stopSequences: string[];
  maxTokens: number;
  thinking: { type: string; budget_tokens?: number } | null;
  /** metadata.user_id, kept for the log. */
  userId: string | undefined;
}

type Obj = Record<string, any>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(param: string, message: string): never {
  throw new RouterError('invalid_request', `${param}: ${message}`, { param });
}

const BILLING_HEADER = 'x-anthropic-billing-header:';

export function isBillingHeader(text: string): boolean {
  return text.trimStart().toLowerCase().startsWith(BILLING_HEADER);
}

export function systemText(system: unknown, at = 'system'): string {
  if (system === undefined || system === null) return '';
  if (typeof system === 'string') return isBillingHeader(system) ? '' : system;
  if (!Array.isArray(system)) bad(at, 'must be a string or an array of text blocks');
  const texts: string[] = [];
  system.forEach((b, i) => {
    if (!isObj(b) || b.type !== 'text' || typeof b.text !== 'string') bad(`${at}[${i}]`, 'must be a text block {"type":"text","text":...}');
    if (!isBillingHeader(b.text) && b.text !== '') texts.push(b.text);
  });
  return texts.join('\n\n');
}

/** An Anthropic image block as a chat image_url part. */
function imagePart(block: Obj, at: string): ContentPart {
  const src = block.source;
  if (!isObj(src)) bad(`${at}.source`, 'is required');
  if (src.type === 'base64') {
    if (typeof src.media_type !== 'string' || typeof src.data !== 'string') bad(`${at}.source`, 'base64 images need media_type and data');
    return { type: 'image_url', image_url: { url: `data:${src.media_type};base64,${src.data}` } };
  }
  if (src.type === 'url') {
    if (typeof src.url !== 'string' || src.url === '') bad(`${at}.source.url`, 'must be a non-empty string');
    return { type: 'image_url', image_url: { url: src.url } };
  }
  bad(`${at}.source.type`, `unsupported image source "${String(src.type)}" (base64 or url)`);
}

/** A document block's text, when it carries text (PDFs cannot go to a chat upstream). */
function documentText(block: Obj, at: string): string {
  const src = block.source;
  if (isObj(src) && src.type === 'text' && typeof src.data === 'string') return src.data;
  if (isObj(src) && src.type === 'content' && Array.isArray(src.content)) return src.content.filter((c: unknown) => isObj(c) && c.type === 'text').map((c: Obj) => c.text).join('\n');
  bad(`${at}.source`, 'only text documents can be sent to this router');
}

/** A tool_result's content: its text for the tool message, its images for the next user turn. */
function toolResult(block: Obj, at: string): { text: string; images: ContentPart[] } {
  const c = block.content;
  const texts: string[] = [];
  const images: ContentPart[] = [];
  if (typeof c === 'string') texts.push(c);
  else if (Array.isArray(c)) {
    c.forEach((part, j) => {
      if (!isObj(part)) bad(`${at}.content[${j}]`, 'must be a content block');
      if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
      else if (part.type === 'image') images.push(imagePart(part, `${at}.content[${j}]`));
      else if (part.type === 'document') texts.push(documentText(part, `${at}.content[${j}]`));
    });
  } else if (c !== undefined && c !== null) bad(`${at}.content`, 'must be a string or an array of blocks');
  let text = texts.join('\n');
  if (block.is_error === true) text = `ERROR: ${text}`;
  if (images.length > 0 && text === '') text = `(${images.length} image${images.length > 1 ? 's' : ''} follow in the next message)`;
  return { text, images };
}

/** User parts as a string when they are all text (local servers prefer strings). */
function userContent(parts: ContentPart[]): string | ContentPart[] {
  return parts.every((p) => p.type === 'text') ? parts.map((p) => p.text).join('\n') : parts;
}

function userTurn(content: unknown, at: string, out: ChatMessage[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'user', content });
    return;
  }
  if (!Array.isArray(content)) bad(`${at}.content`, 'must be a string or an array of content blocks');
  const parts: ContentPart[] = [];
  const toolImages: ContentPart[] = [];
  content.forEach((b, j) => {
    const bat = `${at}.content[${j}]`;
    if (!isObj(b) || typeof b.type !== 'string') bad(bat, 'must be a content block with a "type"');
    switch (b.type) {
      case 'text':
        if (typeof b.text !== 'string') bad(`${bat}.text`, 'must be a string');
        if (b.text !== '') parts.push({ type: 'text', text: b.text });
        return;
      case 'image':
        parts.push(imagePart(b, bat));
        return;
      case 'document':
        parts.push({ type: 'text', text: documentText(b, bat) });
        return;
      case 'tool_result': {
        if (typeof b.tool_use_id !== 'string') bad(`${bat}.tool_use_id`, 'must be a string');
        const r = toolResult(b, bat);
        out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: r.text });
        toolImages.push(...r.images);
        return;
      }
      case 'thinking':
      case 'redacted_thinking':
        return;
      default:
        bad(`${bat}.type`, `unsupported content block "${b.type}" in a user message`);
    }
  });
  const all = [...toolImages, ...parts];
  if (all.length > 0) out.push({ role: 'user', content: userContent(all) });
}

function assistantTurn(content: unknown, at: string, out: ChatMessage[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'assistant', content });
    return;
  }
  if (!Array.isArray(content)) bad(`${at}.content`, 'must be a string or an array of content blocks');
  const texts: string[] = [];
  const calls: unknown[] = [];
  content.forEach((b, j) => {
    const bat = `${at}.content[${j}]`;
    if (!isObj(b) || typeof b.type !== 'string') bad(bat, 'must be a content block with a "type"');
    if (b.type === 'text') {
      if (typeof b.text === 'string' && b.text !== '') texts.push(b.text);
    } else if (b.type === 'tool_use' || b.type === 'server_tool_use') {
      if (typeof b.id !== 'string' || typeof b.name !== 'string') bad(bat, 'tool_use needs id and name');
      calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
    }
    // thinking / redacted_thinking: dropped (a local model cannot use another's signature).
  });
  const msg: ChatMessage = { role: 'assistant', content: texts.length > 0 ? texts.join('\n\n') : calls.length > 0 ? null : '' };
  if (calls.length > 0) msg.tool_calls = calls;
  out.push(msg);
}

function chatTools(tools: unknown): unknown[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) bad('tools', 'must be an array');
  const out: unknown[] = [];
  tools.forEach((t, i) => {
    if (!isObj(t) || typeof t.name !== 'string') bad(`tools[${i}]`, 'must be an object with a name');
    // Server tools (web_search_…, bash_…) have no input_schema: nothing local can run them.
    if (!isObj(t.input_schema)) return;
    out.push({ type: 'function', function: { name: t.name, ...(typeof t.description === 'string' ? { description: t.description } : {}), parameters: t.input_schema } });
  });
  return out.length > 0 ? out : undefined;
}

function chatToolChoice(tc: unknown): { choice: unknown; parallel: boolean | undefined } {
  if (!isObj(tc)) return { choice: undefined, parallel: undefined };
  const parallel = tc.disable_parallel_tool_use === true ? false : undefined;
  switch (tc.type) {
    case 'auto':
      return { choice: 'auto', parallel };
    case 'any':
      return { choice: 'required', parallel };
    case 'none':
      return { choice: 'none', parallel };
    case 'tool':
      if (typeof tc.name !== 'string') bad('tool_choice.name', 'is required for type "tool"');
      return { choice: { type: 'function', function: { name: tc.name } }, parallel };
    default:
      bad('tool_choice.type', 'must be auto, any, tool or none');
  }
}

/** `countOnly`: a count_tokens body, which has no max_tokens. */
export function anthropicToChat(value: unknown, opts: { countOnly?: boolean } = {}): AnthropicRequest {
  if (!isObj(value)) bad('body', 'must be a JSON object');
  let body: Obj = value;
  if (typeof body.model !== 'string' || body.model === '') bad('model', 'is required and must be a non-empty string');
  if (opts.countOnly && body.max_tokens === undefined) body = { ...body, max_tokens: 1 };
  if (typeof body.max_tokens !== 'number' || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) bad('max_tokens', 'is required and must be a positive integer');
  if (!Array.isArray(body.messages) || body.messages.length === 0) bad('messages', 'is required and must be a non-empty array');
  const stopSequences = body.stop_sequences === undefined ? [] : body.stop_sequences;
  if (!Array.isArray(stopSequences) || !stopSequences.every((s) => typeof s === 'string')) bad('stop_sequences', 'must be an array of strings');

  const messages: ChatMessage[] = [];
  const system = [systemText(body.system)];
  const turns: ChatMessage[] = [];
  body.messages.forEach((m: unknown, i: number) => {
    const at = `messages[${i}]`;
    if (!isObj(m)) bad(at, 'must be an object');
    if (m.role === 'user') userTurn(m.content, at, turns);
    else if (m.role === 'assistant') assistantTurn(m.content, at, turns);
    // Claude Code puts some system text inside `messages`; it joins the leading system message.
    else if (m.role === 'system') system.push(systemText(m.content, `${at}.content`));
    else bad(`${at}.role`, 'must be "user", "assistant" or "system"');
  });
  const systemJoined = system.filter((t) => t !== '').join('\n\n');
  if (systemJoined !== '') messages.push({ role: 'system', content: systemJoined });
  messages.push(...pairToolCalls(turns));

  const stream = body.stream === true;
  const chat: ChatBody = { model: body.model, messages, max_tokens: body.max_tokens };
  if (stream) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  const tools = chatTools(body.tools);
  if (tools) chat.tools = tools;
  const { choice, parallel } = chatToolChoice(body.tool_choice);
  if (tools && choice !== undefined) chat.tool_choice = choice;
  if (tools && parallel !== undefined) chat.parallel_tool_calls = parallel;
  if (stopSequences.length > 0) chat.stop = stopSequences;
  for (const k of ['temperature', 'top_p', 'top_k'] as const) if (typeof body[k] === 'number') chat[k] = body[k];
  const thinking = isObj(body.thinking) && typeof body.thinking.type === 'string' ? (body.thinking as AnthropicRequest['thinking']) : null;
  const userId = isObj(body.metadata) && typeof body.metadata.user_id === 'string' ? body.metadata.user_id : undefined;
  return { chat, model: body.model, stream, stopSequences, maxTokens: body.max_tokens, thinking, userId };
}
