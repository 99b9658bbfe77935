// Errors in each client protocol's own envelope, and the upstream's "context is full" answers
// recognised so each protocol can say "prompt is too long" in its own words (Claude Code
// compacts on that message; Codex on `context_length_exceeded`).
import { asRouterError, type RouterError } from '../errors.ts';
import { anthropicErrorBody, type AnthropicErrorType } from './anthropic-answer.ts';

export interface Rendered {
  status: number;
  body: string;
}

/** Anthropic's documented error type for a status: any other 4xx is invalid_request_error; 503 and 529 are overloaded_error. */
export function anthropicType(status: number, code: string): AnthropicErrorType {
  if (code === 'upstream_saturated' || status === 503 || status === 529) return 'overloaded_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

/** A router error as Anthropic sends it: 529 for "busy", `prompt is too long` for the context guard. */
export function anthropicRouterError(err: unknown): Rendered {
  const e: RouterError = asRouterError(err);
  const status = e.code === 'upstream_saturated' ? 529 : e.status;
  const message = e.code === 'context_length_exceeded' ? `prompt is too long: ${e.message}` : e.message;
  return { status, body: JSON.stringify(anthropicErrorBody(anthropicType(e.status, e.code), message)) };
}

export interface Overflow {
  prompt: number | null;
  max: number | null;
  message: string;
}

const OVERFLOW_TEXT = /maximum context length|context length exceeded|context_length_exceeded|exceeds? the available context size|exceed_context_size|context window|prompt is too long|input (?:is )?too long|too many tokens/i;

/** The message of an OpenAI-shaped (or bare) error body. */
export function upstreamMessage(bytes: Buffer): string {
  const text = bytes.toString('utf8', 0, Math.min(bytes.length, 64 * 1024));
  try {
    const v = JSON.parse(text);
    if (typeof v?.error === 'string') return v.error;
    if (typeof v?.error?.message === 'string') return v.error.message;
    if (typeof v?.message === 'string') return v.message;
    if (typeof v?.detail === 'string') return v.detail;
  } catch {
    /* not JSON: the text itself */
  }
  return text.slice(0, 2000);
}

/**
 * An upstream 4xx that says the prompt does not fit, with the counts when it gives them:
 * vLLM "maximum context length is M tokens. However, you requested N tokens";
 * llama.cpp `exceed_context_size_error` with n_prompt_tokens / n_ctx.
 */
export function overflowIn(bytes: Buffer): Overflow | null {
  const message = upstreamMessage(bytes);
  let type = '';
  let prompt: number | null = null;
  let max: number | null = null;
  try {
    const v = JSON.parse(bytes.toString('utf8', 0, Math.min(bytes.length, 64 * 1024)));
    type = String(v?.error?.type ?? v?.error?.code ?? '');
    if (typeof v?.error?.n_prompt_tokens === 'number') prompt = v.error.n_prompt_tokens;
    if (typeof v?.error?.n_ctx === 'number') max = v.error.n_ctx;
  } catch {
    /* counts come from the text below */
  }
  if (!OVERFLOW_TEXT.test(message) && !OVERFLOW_TEXT.test(type)) return null;
  max ??= firstNumber(/maximum context length is (\d+)/i, message) ?? firstNumber(/context size \((\d+)/i, message);
  prompt ??= firstNumber(/you requested (\d+)/i, message) ?? firstNumber(/request \((\d+) tokens\)/i, message) ?? firstNumber(/(\d+) tokens? (?:in the messages|of input)/i, message);
  return { prompt, max, message };
}

function firstNumber(re: RegExp, text: string): number | null {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

/** Anthropic's wording, which Claude Code matches to start compacting. */
export function anthropicOverflow(o: Overflow): Rendered {
  const message = o.prompt !== null && o.max !== null ? `prompt is too long: ${o.prompt} tokens > ${o.max} maximum` : `prompt is too long: ${o.message}`;
  return { status: 400, body: JSON.stringify(anthropicErrorBody('invalid_request_error', message)) };
}

/** OpenAI's code for the same, for Responses and legacy completions clients. */
export function openaiOverflow(o: Overflow): Rendered {
  const counts = o.prompt !== null && o.max !== null ? ` (${o.prompt} tokens > ${o.max} maximum)` : '';
  return { status: 400, body: JSON.stringify({ error: { message: `Your input exceeds the context window of this model${counts}: ${o.message}`, type: 'invalid_request_error', code: 'context_length_exceeded', param: 'input' } }) };
}

/** An upstream 4xx in the Anthropic envelope. */
export function anthropicUpstreamError(status: number, bytes: Buffer): Rendered {
  const o = overflowIn(bytes);
  if (o) return anthropicOverflow(o);
  return { status, body: JSON.stringify(anthropicErrorBody(anthropicType(status, ''), upstreamMessage(bytes))) };
}

/** An upstream 4xx for OpenAI-shaped clients: passed as is, except an overflow gets its code. */
export function openaiUpstreamError(status: number, bytes: Buffer): Rendered {
  const o = overflowIn(bytes);
  if (o) return openaiOverflow(o);
  return { status, body: bytes.toString('utf8') };
}
