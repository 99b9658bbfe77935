// Token counts from an upstream's own tokenizer, for /v1/messages/count_tokens (SPEC §13).
// vLLM's /tokenize applies the chat template to messages + tools; llama.cpp's /tokenize takes
// text; a route serving Anthropic Messages natively may count itself (llama.cpp does). Other
// runtimes have none: the caller falls back to the estimate. Sent outside the
// route's pool, so a count never waits behind generations holding every pooled connection.
import { request } from 'undici';
import type { ChatBody } from '../classify/request-facts.ts';
import { messageText } from '../classify/request-facts.ts';
import type { RouteConfig } from '../policy/types.ts';
import { authHeader } from './probe.ts';

const TOKENIZE_TIMEOUT_MS = 3000;

/** The text a tokenizer without a chat template is given: every message, then the tools. */
export function flatText(chat: ChatBody): string {
  const parts = chat.messages.map((m) => {
    const calls = Array.isArray(m.tool_calls) ? JSON.stringify(m.tool_calls) : '';
    return `${m.role}: ${messageText(m)}${calls}`;
  });
  if (Array.isArray(chat.tools) && chat.tools.length > 0) parts.push(JSON.stringify(chat.tools));
  return parts.join('\n');
}

/**
 * The upstream's count, or null when it has no tokenizer or did not answer in time. A route
 * that serves Anthropic Messages natively is asked its own /messages/count_tokens first, with
 * the client's body (`anthropicBody`).
 */
export async function upstreamTokenCount(route: RouteConfig, chat: ChatBody, anthropicBody?: Record<string, unknown>): Promise<number | null> {
  if (anthropicBody && route.native?.includes('messages')) {
    const v = await postJson(route, `${route.url.replace(/\/$/, '')}/messages/count_tokens`, { ...anthropicBody, model: route.model });
    if (typeof v?.input_tokens === 'number') return v.input_tokens;
  }
  let body: unknown;
  if (route.runtime === 'vllm') body = { model: route.model, messages: chat.messages, ...(chat.tools ? { tools: chat.tools } : {}), add_generation_prompt: true };
  else if (route.runtime === 'llamacpp') body = { content: flatText(chat) };
  else return null;
  const v = await postJson(route, new URL('/tokenize', route.url).href, body);
  if (typeof v?.count === 'number') return v.count;
  if (Array.isArray(v?.tokens)) return v.tokens.length;
  return null;
}

/** A JSON answer to a small POST, or null on any failure (the caller falls back). */
async function postJson(route: RouteConfig, url: string, body: unknown): Promise<any> {
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeader(route) },
      body: JSON.stringify(body),
      headersTimeout: Math.min(TOKENIZE_TIMEOUT_MS, route.timeout_ms),
      bodyTimeout: TOKENIZE_TIMEOUT_MS,
    });
    const text = await res.body.text();
    return res.statusCode === 200 ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}
