// Fail-closed buckets (SPEC §5, camera events): a json_schema answer is checked before the
// client sees it. Invalid output is retried once on the bucket's escalate_to route; if that
// fails too, the client gets a synthetic envelope that says so. Never a silent suppression.
// The client's schema is bounded, compiled and applied by the schema guard
// (router/schema-guard/), off the event loop: no schema can stall other requests.
import { writeJson, writeStreamHead } from './answer-writer.ts';
import type { ChatBody } from '../classify/request-facts.ts';
import type { Decision } from '../decide/engine.ts';
import type { PreparedSchema, SchemaGuard } from '../schema-guard/guard.ts';
import { decisionHeaders, forward, type ForwardDeps, type ForwardResult } from './forward.ts';
import type { ForwardRequest } from './forward-request.ts';
import { completionAsSse, syntheticCompletion } from './synthetic.ts';

export function isFailClosedRequest(d: Decision, body: ChatBody): boolean {
  return d.failClosed && body.response_format?.type === 'json_schema';
}

type Check = { ok: true } | { ok: false; outcome: 'unavailable' | 'invalid_json' | 'schema_mismatch' | 'no_content' | 'validation_timeout'; errors: string[] };

async function check(result: ForwardResult, schema: PreparedSchema, guard: SchemaGuard, ex: ForwardRequest): Promise<Check> {
  const cap = result.delivery?.captured;
  if (!cap || result.error) return { ok: false, outcome: 'unavailable', errors: [result.error?.message ?? 'no answer'] };
  let content: unknown;
  try {
    content = (JSON.parse(cap.bytes.toString('utf8')) as { choices?: Array<{ message?: { content?: unknown } }> }).choices?.[0]?.message?.content;
  } catch {
    return { ok: false, outcome: 'invalid_json', errors: ['upstream body is not JSON'] };
  }
  if (typeof content !== 'string') return { ok: false, outcome: 'no_content', errors: ['choices[0].message.content is missing'] };
  return guard.check(schema, content, ex.policy.doc.fail_closed);
}

export async function forwardFailClosed(ex: ForwardRequest, deps: ForwardDeps, guard: SchemaGuard): Promise<{ result: ForwardResult; synthetic: boolean }> {
  const body = ex.body as ChatBody;
  // Bounds, $ref cycles and compiling: a schema refused here is a 400 and no upstream is called.
  const schema = await guard.prepare(body.response_format?.json_schema?.schema, ex.policy.doc.fail_closed);
  // The upstream is always asked without streaming: a stream cannot be validated before it is sent.
  const { stream_options: _omit, ...upstreamBody } = { ...body, stream: false };
  const captureEx: ForwardRequest = { ...ex, body: upstreamBody, rawBody: undefined, stream: false, capture: true };

  const first = await forward(captureEx, deps);
  if (first.clientGone) return { result: first, synthetic: false };
  // An upstream 4xx goes back as it is, unchecked.
  if (isClientError(first)) return { result: send(ex, first), synthetic: false };
  const firstCheck = await check(first, schema, guard, ex);
  if (firstCheck.ok) return { result: send(ex, first), synthetic: false };
  const escalateTo = ex.decision.escalateTo;
  // No second try on a route the outage chain has just found unavailable.
  const escalating = escalateTo !== undefined && !(firstCheck.outcome === 'unavailable' && first.path.includes(escalateTo));
  logFailure(ex, first, escalating ? 'escalate' : 'synthetic', 'primary', firstCheck);

  let last = first;
  let lastCheck: Check = firstCheck;
  if (escalating) {
    const pinned: Decision = { ...ex.decision, route: escalateTo, pinned: true, skipped: [], reason: 'escalated' };
    const second = await forward({ ...captureEx, decision: pinned }, deps);
    if (second.clientGone) return { result: second, synthetic: false };
    const secondCheck = await check(second, schema, guard, ex);
    const merged = { ...second, path: [...first.path, ...second.path], reason: `escalated_${firstCheck.outcome}` };
    if (secondCheck.ok) return { result: send(ex, merged), synthetic: false };
    logFailure(ex, second, 'synthetic', 'escalation', secondCheck);
    last = merged;
    lastCheck = secondCheck;
  }
  return { result: sendSynthetic(ex, last, lastCheck as Exclude<Check, { ok: true }>), synthetic: true };
}

function isClientError(r: ForwardResult): boolean {
  const s = r.delivery?.captured?.status ?? 0;
  return s >= 400 && s < 500;
}

function send(ex: ForwardRequest, r: ForwardResult): ForwardResult {
  const cap = r.delivery!.captured!;
  const own = decisionHeaders(ex, r.route, r.reason, r.path);
  if (r.maxTokensSent !== undefined) own['x-homelab-max-tokens'] = String(r.maxTokensSent);
  if (ex.stream && cap.status === 200) {
    writeStreamHead(ex.res, { status: 200, own }, completionAsSse(JSON.parse(cap.bytes.toString('utf8')), (ex.body as ChatBody).stream_options));
  } else {
    ex.res.writeHead(cap.status, { ...cap.headers, ...own, 'content-length': String(cap.bytes.length) });
    ex.res.end(cap.bytes);
  }
  return { ...r, status: cap.status, delivery: { ...r.delivery!, ttfbMs: Date.now() - ex.startedAt } };
}

function sendSynthetic(ex: ForwardRequest, r: ForwardResult, failed: Exclude<Check, { ok: true }>): ForwardResult {
  const reason = `${failed.outcome}: ${failed.errors.slice(0, 3).join('; ')}`.slice(0, 500);
  const completion = syntheticCompletion(ex.requestId, { escalate_to_spark: true, synthetic: true, reason });
  const own = { ...decisionHeaders(ex, r.route, `synthetic_${failed.outcome}`, r.path), 'x-homelab-synthetic': '1' };
  if (ex.stream) {
    writeStreamHead(ex.res, { status: 200, own }, completionAsSse(completion, (ex.body as ChatBody).stream_options));
  } else {
    writeJson(ex.res, { status: 200, own }, JSON.stringify(completion));
  }
  return { ...r, status: 200, error: null, reason: `synthetic_${failed.outcome}`, delivery: { kind: 'done', status: 200, usage: null, ttfbMs: Date.now() - ex.startedAt, streamed: ex.stream, clientGone: false, upstreamError: null } };
}

function logFailure(ex: ForwardRequest, r: ForwardResult, action: 'escalate' | 'synthetic', stage: 'primary' | 'escalation', c: Exclude<Check, { ok: true }>): void {
  ex.log.validation.warn({
    bucket: ex.decision.bucket,
    route: r.route,
    stage,
    outcome: c.outcome,
    errors: c.errors.slice(0, 10),
    action,
  });
}
