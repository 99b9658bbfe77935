// One request as the proxy forwards it: the decision, the body for the upstream, where the
// answer goes, and the client's signal. Built by the HTTP pipeline (http/pipeline.ts) once the
// decision is made; copies of it (fail-closed's capture, a translated answer) share `attempts`.
import type { ServerResponse } from 'node:http';
import type { Decision } from '../decide/engine.ts';
import type { Attempt } from '../obs/request-record.ts';
import type { RequestLoggers } from '../obs/request-loggers.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { Dialect } from './dialect.ts';
import type { Abortable } from './signals.ts';

export interface ForwardRequest {
  requestId: string;
  startedAt: number;
  /** The request's own loggers (each line carries its request_id). */
  log: RequestLoggers;
  res: ServerResponse;
  /** Aborts when the client goes away. */
  clientSignal: Abortable;
  policy: CompiledPolicy;
  decision: Decision;
  /** Upstream path below the route URL: '/chat/completions' or '/embeddings'. */
  upstreamPath: string;
  body: Record<string, unknown>;
  /** The client's JSON text of `body`, when `body` is forwarded unchanged apart from the model. */
  rawBody?: string | undefined;
  stream: boolean;
  /** Read the answer in full and return it instead of writing it (fail-closed validation). */
  capture?: boolean;
  /** Another client protocol (SPEC §13): what each route is sent, and how its answer is translated. */
  dialect?: Dialect;
  /** Each route tried is pushed here (shared by copies of the request, so retries add to it). */
  attempts?: Attempt[];
  /** Sees the response bytes as they go to the client (request_log.store_payloads). */
  tap?: ((chunk: Buffer) => void) | undefined;
}
