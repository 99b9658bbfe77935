// POST /v1/messages, /v1/responses, /v1/completions and /v1/messages/count_tokens (SPEC §13).
// Each request is parsed into the chat request the router classifies, then takes the same
// path as chat: decision (§5, context guard included), forward (capacity, failover), the
// decision log and metrics. What differs is carried by a Dialect: what each route is sent and
// how its answer is translated back; errors leave in the client protocol's envelope.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { countChars, estimateTokens, messageText, requestFacts, type ChatBody } from '../classify/request-facts.ts';
import type { Decision } from '../decide/engine.ts';
import { RouterError } from '../errors.ts';
import { decisionHeaders, forward, type ForwardResult } from '../proxy/forward.ts';
import type { ForwardRequest } from '../proxy/forward-request.ts';
import type { Dialect } from '../proxy/dialect.ts';
import { isFailClosedRequest } from '../proxy/fail-closed.ts';
import { anthropicToChat, type AnthropicRequest } from '../protocol/anthropic-request.ts';
import { completionsToChat, type CompletionsRequest } from '../protocol/completions.ts';
import { anthropicDialect, completionsDialect, responsesDialect } from '../protocol/dialects.ts';
import { claudeCodeSession } from '../protocol/session.ts';
import { responsesToChat, type ResponsesRequest } from '../protocol/responses-request.ts';
import type { RouterService } from '../service.ts';
import { flatText, upstreamTokenCount } from '../upstream/tokenize.ts';
import { decodeJson, readBody } from './body.ts';
import { decideFor, factsFor, forwardDeps } from './chat.ts';
import { forwardFailClosedTranslated } from './protocol-fail-closed.ts';
import { openScope, recordOutcome, type RequestScope } from './request-scope.ts';
import { header, sendError, sendJson } from './respond.ts';

interface Parsed {
  chat: ChatBody;
  stream: boolean;
}

interface ProtocolEndpoint<P extends Parsed> {
  name: 'messages' | 'responses' | 'completions';
  parse(value: unknown): P;
  dialect(p: P, inputEstimate: number, raw: string, value: Record<string, unknown>): Dialect;
  /** The client's session id for the log (parsed is undefined when the body did not parse). */
  session?(req: IncomingMessage, parsed: P | undefined): string | undefined;
}

/** Claude Code's session: its header, else the session part of metadata.user_id. */
function messagesSession(req: IncomingMessage, parsed: { userId: string | undefined } | undefined): string | undefined {
  return claudeCodeSession(header(req, 'x-claude-code-session-id'), parsed?.userId);
}

const MESSAGES: ProtocolEndpoint<AnthropicRequest> = {
  name: 'messages',
  parse: (v) => anthropicToChat(v),
  dialect: (p, est, raw, value) => anthropicDialect(p, est, raw, value),
  session: messagesSession,
};

const RESPONSES: ProtocolEndpoint<ResponsesRequest> = {
  name: 'responses',
  parse: responsesToChat,
  dialect: (p, est, raw) => responsesDialect(p, est, raw),
};

const COMPLETIONS: ProtocolEndpoint<CompletionsRequest> = {
  name: 'completions',
  parse: completionsToChat,
  dialect: (p, _est, raw) => completionsDialect(p, raw),
};

async function readJson(req: IncomingMessage, scope: RequestScope): Promise<{ value: unknown; text: string }> {
  return decodeJson(await readBody(req, scope.policy.policy.server.max_body_bytes, scope.policy.policy.server.body_timeout_ms));
}

async function serveProtocol<P extends Parsed>(ep: ProtocolEndpoint<P>, req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  const scope = openScope(req, res, svc);
  let decision: Decision | undefined;
  let result: ForwardResult | undefined;
  let parsed: P | undefined;
  let status = 200;
  let errorCode: string | undefined;
  let synthetic = false;
  try {
    const { value, text } = await readJson(req, scope);
    parsed = ep.parse(value);
    const facts = factsFor(parsed.chat, scope);
    if (scope.grant) {
      // The key's model allowlist and budget (SPEC §12), as for chat.
      svc.keys.checkOverrides(scope.grant, scope.policy, header(req, 'x-homelab-route'), header(req, 'x-homelab-bucket'));
      await svc.keys.checkModel(scope.grant, parsed.chat.model, { prompt: facts.estimatedTokens, answer: facts.maxTokens > 0 ? facts.maxTokens : undefined });
    }
    decision = decideFor(req, facts, scope, svc);
    if (decision.error) throw decision.error;
    const dialect = ep.dialect(parsed, decision.estimatedTokens, text, value as Record<string, unknown>);
    const exchange: ForwardRequest & { dialect: Dialect } = {
      requestId: scope.requestId,
      startedAt: scope.startedAt,
      res,
      clientSignal: scope.client,
      policy: scope.policy,
      decision,
      upstreamPath: '/chat/completions',
      body: parsed.chat,
      stream: parsed.stream,
      dialect,
      attempts: scope.attempts,
    };
    if (isFailClosedRequest(decision, parsed.chat)) {
      const fc = await forwardFailClosedTranslated(exchange, forwardDeps(svc), svc.schemas, parsed.stream);
      result = fc.result;
      synthetic = fc.synthetic;
    } else {
      result = await forward(exchange, forwardDeps(svc));
    }
    status = result.status;
    if (result.error) {
      errorCode = result.error.code;
      status = sendError(res, result.error, decisionHeaders({ requestId: scope.requestId, decision }, result.route, result.reason, result.path));
    }
  } catch (err) {
    const headers = decision ? decisionHeaders({ requestId: scope.requestId, decision }, decision.route ?? decision.intended, decision.reason, decision.skipped.map((s) => s.route)) : { 'x-request-id': scope.requestId };
    status = sendError(res, err, headers);
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
    if (!(err instanceof RouterError)) svc.logs.service.error({ err, request_id: scope.requestId }, `unexpected error in ${ep.name} handler`);
  } finally {
    const prompt = scope.policy.policy.logging.prompts && parsed ? parsed.chat.messages.map(messageText).join('\n') : undefined;
    recordOutcome(scope, svc, { endpoint: ep.name, model: parsed?.chat.model, decision, result, status, errorCode, stream: parsed?.stream === true, prompt, synthetic, session: ep.session?.(req, parsed) });
  }
}

export function handleMessages(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  return serveProtocol(MESSAGES, req, res, svc);
}

export function handleResponses(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  return serveProtocol(RESPONSES, req, res, svc);
}

export function handleCompletions(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  return serveProtocol(COMPLETIONS, req, res, svc);
}

/** The estimate for count_tokens: system, messages and tools (CLIProxyAPI #679 undercounted without them). */
export function estimateInputTokens(chat: ChatBody): number {
  const facts = requestFacts(chat, 'all', 0);
  return estimateTokens(countChars(flatText(chat)), facts.imageCount);
}

/**
 * POST /v1/messages/count_tokens: the route the request would take counts it with its own
 * tokenizer when it has one; otherwise the estimate, flagged `x-homelab-estimated: 1`. Never a
 * 404, whatever the route: some clients suspend a model on a 404 here.
 */
export async function handleCountTokens(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  const scope = openScope(req, res, svc);
  let parsed: AnthropicRequest | undefined;
  let decision: Decision | undefined;
  let status = 200;
  let errorCode: string | undefined;
  try {
    const { value } = await readJson(req, scope);
    parsed = anthropicToChat(value, { countOnly: true });
    // A model this router does not know still gets a count (the estimate), not a 404.
    try {
      decision = decideFor(req, factsFor(parsed.chat, scope), scope, svc);
    } catch {
      decision = undefined;
    }
    const route = decision ? (decision.route ?? decision.intended) : null;
    const headers = decision ? decisionHeaders({ requestId: scope.requestId, decision }, decision.route, decision.reason, decision.skipped.map((s) => s.route)) : { 'x-request-id': scope.requestId };
    const cfg = route ? scope.policy.policy.routes[route] : undefined;
    const counted = cfg ? await upstreamTokenCount(cfg, { ...parsed.chat, model: cfg.model }, value as Record<string, unknown>) : null;
    if (counted !== null) return sendJson(res, 200, { input_tokens: counted }, headers);
    sendJson(res, 200, { input_tokens: estimateInputTokens(parsed.chat) }, { ...headers, 'x-homelab-estimated': '1' });
  } catch (err) {
    status = sendError(res, err, { 'x-request-id': scope.requestId });
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
  } finally {
    // Logged like every request (endpoint count_tokens), so a session's counts show beside its messages.
    recordOutcome(scope, svc, { endpoint: 'count_tokens', decision, result: undefined, status, errorCode, stream: false, session: messagesSession(req, parsed) });
  }
}
