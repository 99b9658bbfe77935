// POST /v1/messages/count_tokens (SPEC §13): counted, not routed. (/v1/messages, /v1/responses
// and /v1/completions are routed endpoints: see endpoints.ts and pipeline.ts.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { countChars, estimateTokens, requestFacts, type ChatBody } from '../classify/request-facts.ts';
import type { Decision } from '../decide/engine.ts';
import { RouterError } from '../errors.ts';
import { decisionHeaders } from '../proxy/forward.ts';
import { anthropicToChat, type AnthropicRequest } from '../protocol/anthropic-request.ts';
import type { RouterService } from '../service.ts';
import { flatText, upstreamTokenCount } from '../upstream/tokenize.ts';
import { messagesSession } from './endpoints.ts';
import { decideChat, factsFor, readJson } from './pipeline.ts';
import { openScope, recordOutcome } from './request-scope.ts';
import { header, sendError, sendJson } from './respond.ts';

/** The estimate for count_tokens: system, messages and tools (CLIProxyAPI #679 undercounted without them). */
export function estimateInputTokens(chat: ChatBody): number {
  const facts = requestFacts(chat, 'all', 0);
  return estimateTokens(countChars(flatText(chat)), facts.imageCount);
}

/**
 * POST /v1/messages/count_tokens: the route the request would take counts it with its own
 * tokenizer when it has one; otherwise the estimate, flagged `x-homelab-estimated: 1`. Never a
 * 404, whatever the route: some clients suspend a model on a 404 here. A key's model allowlist
 * applies as it does to /v1/messages (403 model_not_allowed).
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
    // A key counts only with the models (and routing headers) it may send messages with: the
    // count asks the route's own tokenizer. Nothing is reserved: a count generates nothing.
    if (scope.grant) {
      svc.keys.checkOverrides(scope.grant, scope.policy, header(req, 'x-homelab-route'), header(req, 'x-homelab-bucket'));
      await svc.keys.checkModel(scope.grant, parsed.model);
    }
    // A model this router does not know still gets a count (the estimate), not a 404.
    try {
      decision = decideChat(req, factsFor(parsed.chat, scope), scope, svc);
    } catch {
      decision = undefined;
    }
    const route = decision ? (decision.route ?? decision.intended) : null;
    const headers = decision ? decisionHeaders({ requestId: scope.requestId, decision }, decision.route, decision.reason, decision.skipped.map((s) => s.route)) : { 'x-request-id': scope.requestId };
    const cfg = route ? scope.policy.doc.routes[route] : undefined;
    const counted = cfg ? await upstreamTokenCount(cfg, { ...parsed.chat, model: cfg.model }, value as Record<string, unknown>) : null;
    if (counted !== null) return sendJson(res, 200, { input_tokens: counted }, headers);
    sendJson(res, 200, { input_tokens: estimateInputTokens(parsed.chat) }, { ...headers, 'x-homelab-estimated': '1' });
  } catch (err) {
    status = sendError(res, err, { 'x-request-id': scope.requestId });
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
  } finally {
    // Logged like every request (endpoint count_tokens), so a session's counts show beside its messages.
    recordOutcome(scope, svc, { endpoint: 'count_tokens', decision, result: undefined, status, errorCode, stream: false, session: messagesSession(req, parsed?.userId) });
  }
}
