// Fail-closed buckets (SPEC §5) for the protocols of §13: a json_schema answer is validated
// before the client sees it, exactly as for chat. proxy/fail-closed.ts runs unchanged on the
// chat request (never streamed upstream, never native) and writes its chat answer (the
// upstream's, or the synthetic envelope) to an AnswerSink; that answer is then translated into
// the client's protocol, with the decision headers fail-closed set.
import type { ServerResponse } from 'node:http';
import type { ChatBody } from '../classify/request-facts.ts';
import type { Dialect } from '../proxy/dialect.ts';
import { forwardFailClosed } from '../proxy/fail-closed.ts';
import type { ForwardDeps, ForwardResult } from '../proxy/forward.ts';
import type { ForwardRequest } from '../proxy/forward-request.ts';
import { completionAsSse } from '../proxy/synthetic.ts';
import { writeJson, writeStreamHead } from '../proxy/answer-writer.ts';
import type { SchemaGuard } from '../schema-guard/guard.ts';

/** Holds what fail-closed writes (it only ever calls writeHead and end once each). */
class AnswerSink {
  status = 0;
  headers: Record<string, unknown> = {};
  body: Buffer = Buffer.alloc(0);
  headersSent = false;
  destroyed = false;

  writeHead(status: number, headers: Record<string, unknown> = {}): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }

  end(chunk?: string | Buffer): this {
    if (chunk !== undefined) this.body = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

/** The router's own headers from what fail-closed wrote: decision, request id, synthetic flag. */
function ownHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if ((k.startsWith('x-homelab-') || k === 'x-request-id') && typeof v === 'string') out[k] = v;
  return out;
}

export async function forwardFailClosedTranslated(ex: ForwardRequest & { dialect: Dialect }, deps: ForwardDeps, guard: SchemaGuard, clientStream: boolean): Promise<{ result: ForwardResult; synthetic: boolean }> {
  const sink = new AnswerSink();
  const { dialect: _d, ...rest } = ex;
  const chatEx: ForwardRequest = { ...rest, res: sink as unknown as ServerResponse, body: { ...(ex.body as ChatBody), stream: false }, rawBody: undefined, stream: false };
  const fc = await forwardFailClosed(chatEx, deps, guard);
  if (fc.result.clientGone || fc.result.error || !sink.headersSent) return fc;
  const { res } = ex;
  const own = ownHeaders(sink.headers);
  const answer = ex.dialect.answer;
  if (sink.status >= 400) {
    const e = answer.clientError(sink.status, sink.body);
    writeJson(res, { status: e.status, own }, e.body);
    return { ...fc, result: { ...fc.result, status: e.status } };
  }
  if (clientStream) {
    const stream = answer.stream();
    let completion: Parameters<typeof completionAsSse>[0] = {};
    try {
      completion = JSON.parse(sink.body.toString('utf8'));
    } catch {
      /* an empty answer: the stream still opens and closes */
    }
    writeStreamHead(res, { status: sink.status, own }, stream.start() + stream.push(Buffer.from(completionAsSse(completion, { include_usage: true }))) + stream.end());
    return fc;
  }
  writeJson(res, { status: sink.status, own }, answer.json(sink.body));
  return fc;
}
