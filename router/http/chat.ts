// POST /v1/route/explain: the decision a chat request would get, described, not forwarded.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChatBody } from '../classify/request-facts.ts';
import { staticChain } from '../decide/chain.ts';
import type { Decision } from '../decide/engine.ts';
import { RouterError } from '../errors.ts';
import type { RouterService } from '../service.ts';
import { decideChat, factsFor, readJson } from './pipeline.ts';
import { openScope, recordOutcome, type RequestScope } from './request-scope.ts';
import { header, sendError, sendJson } from './respond.ts';
import { validateChatBody } from './validate.ts';

export async function handleExplain(req: IncomingMessage, res: ServerResponse, svc: RouterService): Promise<void> {
  const scope = openScope(req, res, svc);
  let body: ChatBody | undefined;
  let decision: Decision | undefined;
  let status = 200;
  let errorCode: string | undefined;
  try {
    body = validateChatBody((await readJson(req, scope)).value);
    if (scope.grant) {
      svc.keys.checkOverrides(scope.grant, scope.policy, header(req, 'x-homelab-route'), header(req, 'x-homelab-bucket'));
      await svc.keys.checkModel(scope.grant, body.model);
    }
    decision = decideChat(req, factsFor(body, scope), scope, svc);
    sendJson(res, 200, explainBody(decision, scope), { 'x-request-id': scope.requestId });
  } catch (err) {
    status = sendError(res, err, { 'x-request-id': scope.requestId });
    errorCode = err instanceof RouterError ? err.code : 'internal_error';
  } finally {
    // In the request log (it is a /v1/* request), not in the decision log: nothing was routed.
    recordOutcome(scope, svc, { endpoint: 'explain', model: body?.model, decision, result: undefined, status, errorCode, stream: false });
  }
}

export function explainBody(d: Decision, scope: Pick<RequestScope, 'policy'>): Record<string, unknown> {
  const chainFrom = d.route ?? d.intended;
  return {
    route: d.route,
    bucket: d.bucket,
    reason: d.reason,
    scores: d.scores,
    matched: d.matched,
    // Which text the classifier scored: the user turn (0 = last, n = n-th earlier by lookback),
    // how it was split (whole, instruction_tag:<tag>, quoted:<tags>, input:forced_tool), the
    // instruction's start, and the nearest example prompts when the similarity stage ran.
    classified: d.classified ? { turn: d.classified.turn, part: d.classified.part, text: d.classified.text } : null,
    nearest_examples: d.classified?.nearest ?? [],
    has_image: d.hasImage,
    estimated_tokens: d.estimatedTokens,
    size_tier: d.sizeTier,
    // SPEC §5 step 6: what the client asked for, and the lowered value `route` would get.
    max_tokens_requested: d.requestedMaxTokens || null,
    max_tokens_sent: d.maxTokensSent ?? null,
    fallback_chain: d.route === null ? { busy: staticChain(scope.policy, chainFrom, 'busy', d.hasImage), outage: staticChain(scope.policy, chainFrom, 'outage', d.hasImage) } : d.fallbackChain,
    fallback_path: [...d.skipped.map((s) => s.route), ...(d.route ? [d.route] : [])].join('>'),
    pinned: d.pinned,
    intended_route: d.intended,
    skipped: d.skipped,
    fail_closed: d.failClosed,
    policy_hash: scope.policy.hash,
    ...(d.error ? { error: d.error.toBody().error } : {}),
  };
}
