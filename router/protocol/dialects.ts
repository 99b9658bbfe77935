// One Dialect (proxy/dialect.ts) per client protocol: what each route is sent (the chat
// translation, or the client's own body when the route serves the protocol natively) and how
// the chat answer is translated back.
import type { ChatBody } from '../classify/request-facts.ts';
import type { NativeProtocol, RouteConfig } from '../policy/types.ts';
import type { AnswerTranslator, Dialect, UpstreamCall } from '../proxy/dialect.ts';
import { withModel } from '../proxy/upstream-body.ts';
import { AnthropicStream, anthropicErrorBody, anthropicMessage, type AnswerContext } from './anthropic-answer.ts';
import { sseEvent } from './chat-deltas.ts';
import { isBillingHeader, type AnthropicRequest } from './anthropic-request.ts';
import { CompletionsStream, completionsObject, type CompletionsRequest } from './completions.ts';
import { anthropicUpstreamError, openaiUpstreamError } from './errors.ts';
import { ResponsesStream, responsesObject } from './responses-answer.ts';
import type { ResponsesRequest } from './responses-request.ts';
import { sanitizeTools } from './tool-schema.ts';
import { thinkingFields, type ThinkingRequest } from './thinking.ts';

const NATIVE_PATH: Record<NativeProtocol, string> = { messages: '/messages', responses: '/responses', completions: '/completions' };

/**
 * Natively relayed streams that end without `data: [DONE]`, and the event that ends one whose
 * upstream fails mid-way. Legacy completions streams end with [DONE] like chat: relayed as chat.
 */
const NATIVE_STREAM: Record<NativeProtocol, UpstreamCall['native']> = {
  messages: { failEvent: (message) => sseEvent('error', anthropicErrorBody('api_error', message)) },
  responses: { failEvent: (message) => sseEvent('error', { type: 'error', code: 'server_error', message, param: null, sequence_number: 0 }) },
  completions: undefined,
};

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
}

class TranslatingDialect implements Dialect {
  readonly #protocol: NativeProtocol;
  readonly #chat: ChatBody;
  readonly answer: AnswerTranslator;
  readonly #native: () => string;
  readonly #thinking: ThinkingRequest | null;

  constructor(protocol: NativeProtocol, chat: ChatBody, answer: AnswerTranslator, native: () => string, thinking: ThinkingRequest | null = null) {
    this.#protocol = protocol;
    this.#chat = chat;
    this.answer = answer;
    this.#native = native;
    this.#thinking = thinking;
  }

  forRoute(route: RouteConfig, maxTokens?: number): UpstreamCall {
    if (route.native?.includes(this.#protocol)) {
      const raw = this.#native();
      return { path: NATIVE_PATH[this.#protocol], body: withModel(raw, route.model) ?? JSON.stringify({ ...(JSON.parse(raw) as object), model: route.model }), answer: null, native: NATIVE_STREAM[this.#protocol] };
    }
    const chat: ChatBody = { ...this.#chat, model: route.model };
    if (maxTokens !== undefined) chat.max_tokens = maxTokens;
    if (route.tools?.sanitize && Array.isArray(chat.tools)) chat.tools = sanitizeTools(chat.tools);
    if (route.thinking !== undefined && route.thinking !== 'off') Object.assign(chat, thinkingFields(route.thinking, this.#thinking, chat.chat_template_kwargs));
    return { path: '/chat/completions', body: JSON.stringify(chat), answer: this.answer };
  }
}

/** The client's text, or, when it carries Claude Code's billing-header block, the body without it. */
function nativeAnthropicBody(raw: string, body: Record<string, unknown>): () => string {
  return () => {
    const sys = body.system;
    if (!Array.isArray(sys) || !sys.some((b) => typeof b?.text === 'string' && isBillingHeader(b.text))) return raw;
    return JSON.stringify({ ...body, system: sys.filter((b) => !(typeof b?.text === 'string' && isBillingHeader(b.text))) });
  };
}

export function anthropicDialect(req: AnthropicRequest, inputEstimate: number, raw: string, body: Record<string, unknown>): Dialect {
  const ctx: AnswerContext = { model: req.model, stopSequences: req.stopSequences, maxTokens: req.maxTokens, inputEstimate };
  const answer: AnswerTranslator = {
    json: (bytes) => JSON.stringify(anthropicMessage(parseJson(bytes), ctx)),
    clientError: anthropicUpstreamError,
    stream: () => new AnthropicStream(ctx),
  };
  return new TranslatingDialect('messages', req.chat, answer, nativeAnthropicBody(raw, body), req.thinking);
}

export function responsesDialect(req: ResponsesRequest, inputEstimate: number, raw: string): Dialect {
  const ctx = { model: req.model, maxTokens: req.maxTokens, inputEstimate, toolNames: req.toolNames, customTools: req.customTools, echo: req.echo };
  const answer: AnswerTranslator = {
    json: (bytes) => JSON.stringify(responsesObject(parseJson(bytes), ctx)),
    clientError: openaiUpstreamError,
    stream: () => new ResponsesStream(ctx),
  };
  return new TranslatingDialect('responses', req.chat, answer, () => raw);
}

export function completionsDialect(req: CompletionsRequest, raw: string): Dialect {
  const ctx = { model: req.model, includeUsage: req.includeUsage };
  const answer: AnswerTranslator = {
    json: (bytes) => JSON.stringify(completionsObject(parseJson(bytes), ctx)),
    clientError: openaiUpstreamError,
    stream: () => new CompletionsStream(ctx),
  };
  return new TranslatingDialect('completions', req.chat, answer, () => raw);
}
