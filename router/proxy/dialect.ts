// The seam for client protocols other than chat completions (SPEC §13). A request that
// carries a Dialect asks it, per route attempted, what to send upstream and how to turn the
// upstream's answer into the client's protocol. Without one (chat, embeddings), the request and
// the answer pass through unchanged: today's zero-copy path.
import type { RouteConfig } from '../policy/types.ts';

/** Upstream chat SSE bytes in, client events out. */
export interface StreamTranslator {
  /** The opening events, written once the upstream committed to a stream. */
  start(): string;
  push(chunk: Buffer): string;
  /** The closing events after a clean end. */
  end(): string;
  /** The closing events after the upstream failed mid-stream. */
  fail(message: string): string;
}

export interface AnswerTranslator {
  /** A whole 2xx JSON answer. */
  json(bytes: Buffer): string;
  /** An upstream 4xx, in the client's error envelope. */
  clientError(status: number, bytes: Buffer): { status: number; body: string };
  stream(): StreamTranslator;
}

export interface UpstreamCall {
  /** Below the route URL, e.g. '/chat/completions' or '/messages'. */
  path: string;
  body: string;
  /** null: the upstream answers in the client's protocol already (native passthrough). */
  answer: AnswerTranslator | null;
  /**
   * Native passthrough of a protocol whose streams end without `data: [DONE]`: a clean end of
   * the upstream stream is success, and a failure mid-stream ends with this event.
   */
  native?: { failEvent(message: string): string };
}

export interface Dialect {
  /** The translator of chat answers into the client's protocol, whatever the route. */
  readonly answer: AnswerTranslator;
  /** `maxTokens`: the output cap this route gets when the context guard lowered it. */
  forRoute(route: RouteConfig, maxTokens?: number): UpstreamCall;
}
