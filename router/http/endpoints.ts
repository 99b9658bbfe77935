// The routed endpoints as data for the pipeline (pipeline.ts): how each parses its body into
// what is routed, how it is decided, where upstream it goes, and how its answer is written.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChatBody, RequestFacts } from '../classify/request-facts.ts';
import { decideEmbeddings } from '../decide/embeddings.ts';
import { anthropicToChat, type AnthropicRequest } from '../protocol/anthropic-request.ts';
import { completionsToChat, type CompletionsRequest } from '../protocol/completions.ts';
import { anthropicDialect, completionsDialect, responsesDialect } from '../protocol/dialects.ts';
import { responsesToChat, type ResponsesRequest } from '../protocol/responses-request.ts';
import { claudeCodeSession } from '../protocol/session.ts';
import type { RouterService } from '../service.ts';
import { decideChat, factsFor, serveRouted, type Routed, type RoutedEndpoint } from './pipeline.ts';
import type { RequestScope } from './request-scope.ts';
import { header } from './respond.ts';
import { validateChatBody, validateEmbeddingsBody, type EmbeddingsBody } from './validate.ts';

/** A request classified as a chat request (chat completions, and the protocols translated to it). */
interface ChatRouted extends Routed {
  chat: ChatBody;
  facts: RequestFacts;
}

/** The routed form of a chat request; `rawBody` when the client's own text is what goes upstream. */
function chatRouted(chat: ChatBody, stream: boolean, scope: RequestScope, rawBody: string | undefined): ChatRouted {
  const facts = factsFor(chat, scope);
  return { body: chat, rawBody, chat, facts, model: chat.model, stream, reserve: { prompt: facts.estimatedTokens, answer: facts.maxTokens > 0 ? facts.maxTokens : undefined } };
}

const decideClassified = (p: ChatRouted, req: IncomingMessage, scope: RequestScope, svc: RouterService) => decideChat(req, p.facts, scope, svc);

export const CHAT: RoutedEndpoint<ChatRouted> = {
  name: 'chat',
  upstreamPath: '/chat/completions',
  parse: (value, text, scope) => {
    const chat = validateChatBody(value);
    return chatRouted(chat, chat.stream === true, scope, text);
  },
  decide: decideClassified,
  storesPayload: true,
};

/** The token estimate of an embeddings input: characters / 4 for text, the count for token ids. */
export function embeddingTokens(input: EmbeddingsBody['input']): number {
  if (typeof input === 'string') return Math.ceil(input.length / 4);
  let n = 0;
  for (const item of input) n += typeof item === 'string' ? Math.ceil(item.length / 4) : Array.isArray(item) ? item.length : 1;
  return n;
}

export const EMBEDDINGS: RoutedEndpoint = {
  name: 'embeddings',
  upstreamPath: '/embeddings',
  parse: (value, text) => {
    const body = validateEmbeddingsBody(value);
    return { body: body as unknown as Record<string, unknown>, rawBody: text, chat: undefined, model: body.model, stream: false, reserve: { prompt: embeddingTokens(body.input), answer: 0 } };
  },
  decide: (p, _req, scope, svc) => decideEmbeddings(p.model, scope.policy, svc.states.view),
};

/** Claude Code's session: its header, else the session part of metadata.user_id. */
export function messagesSession(req: IncomingMessage, userId: string | undefined): string | undefined {
  return claudeCodeSession(header(req, 'x-claude-code-session-id'), userId);
}

interface Translated<R> extends ChatRouted {
  request: R;
}

function translated<R extends { chat: ChatBody; stream: boolean }>(request: R, scope: RequestScope): Translated<R> {
  return { ...chatRouted(request.chat, request.stream, scope, undefined), request };
}

export const MESSAGES: RoutedEndpoint<Translated<AnthropicRequest>> = {
  name: 'messages',
  upstreamPath: '/chat/completions',
  parse: (value, _text, scope) => translated(anthropicToChat(value), scope),
  decide: decideClassified,
  dialect: (p, d, text, value) => anthropicDialect(p.request, d.estimatedTokens, text, value as Record<string, unknown>),
  session: (req, p) => messagesSession(req, p?.request.userId),
};

export const RESPONSES: RoutedEndpoint<Translated<ResponsesRequest>> = {
  name: 'responses',
  upstreamPath: '/chat/completions',
  parse: (value, _text, scope) => translated(responsesToChat(value), scope),
  decide: decideClassified,
  dialect: (p, d, text) => responsesDialect(p.request, d.estimatedTokens, text),
};

export const COMPLETIONS: RoutedEndpoint<Translated<CompletionsRequest>> = {
  name: 'completions',
  upstreamPath: '/chat/completions',
  parse: (value, _text, scope) => translated(completionsToChat(value), scope),
  decide: decideClassified,
  dialect: (p, _d, text) => completionsDialect(p.request, text),
};

export const handleChat = (req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> => serveRouted(CHAT, req, res, svc);
export const handleEmbeddings = (req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> => serveRouted(EMBEDDINGS, req, res, svc);
export const handleMessages = (req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> => serveRouted(MESSAGES, req, res, svc);
export const handleResponses = (req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> => serveRouted(RESPONSES, req, res, svc);
export const handleCompletions = (req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> => serveRouted(COMPLETIONS, req, res, svc);
