// The typed record of one finished /v1/* request, and the sinks it is handed to: the JSON-lines
// decision log (router-decisions.jsonl, SPEC §8) and the SQLite request log (SPEC §10). Built
// once per request by http/request-scope.ts; a sink must not block (each one queues or buffers).

/** How one route of the chain ended for this request. */
export type AttemptResult =
  | 'ok' // answered (any status it relayed)
  | 'busy' // no slot in time, or the upstream said 429 / busy: spilled
  | 'outage' // refused, reset, timed out or 5xx before the first byte: failed over
  | 'mid_stream' // the upstream failed after the first byte went to the client
  | 'client_gone'; // the client left while this route was serving or queued

export interface Attempt {
  route: string;
  outcome: AttemptResult;
  /** From the start of this attempt (queue wait included) to its outcome. */
  ms: number;
  /** The upstream's HTTP status, where it answered. */
  status?: number;
  detail?: string;
}

/** Why the decision went where it did: what the request-detail view shows. */
export interface DecisionDetail {
  scores: Record<string, number>;
  matched: Record<string, string[]>;
  pinned: boolean;
  has_image: boolean;
  size_tier: string;
  intended_route: string;
  skipped: Array<{ route: string; why: string }>;
}

export type Endpoint = 'chat' | 'embeddings' | 'messages' | 'responses' | 'completions' | 'count_tokens' | 'explain' | 'models';

/** The endpoints whose requests are routing decisions: in router-decisions.jsonl and the request metrics. */
const DECISIONS: ReadonlySet<Endpoint> = new Set(['chat', 'embeddings', 'messages', 'responses', 'completions', 'count_tokens']);

export function isDecision(e: Endpoint): boolean {
  return DECISIONS.has(e);
}

export interface RequestRecord {
  request_id: string;
  /** Epoch ms when the request arrived. */
  ts: number;
  endpoint: Endpoint;
  /** The key name when the request carried a key, else the client's address. */
  client: string;
  /** The API key's name, when one was used. */
  key_name?: string | null | undefined;
  user_agent: string | null;
  /** The `model` as the client asked for it. */
  model: string | null;
  bucket: string | null;
  route: string | null;
  served_model: string | null;
  reason: string;
  fallback_path: string;
  status: number;
  error_code: string | null;
  stream: boolean;
  ttfb_ms: number | null;
  duration_ms: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  estimated_tokens: number | null;
  /** The lowered max_tokens the serving route got (context guard), when it clamped. */
  max_tokens_sent?: number | undefined;
  /** The client's own session id (Claude Code's), when it sent one. */
  session?: string | undefined;
  attempts: Attempt[];
  decision: DecisionDetail | null;
  policy_hash: string;
  synthetic: boolean;
  /** The scored prompt text (logging.prompts). */
  prompt?: string | undefined;
  /** Request and response bodies (request_log.store_payloads). */
  payload?: { request: string; response: string | null } | undefined;
}

export interface RequestSink {
  write(record: RequestRecord): void;
}

/**
 * The router-decisions.jsonl line of a record: the same fields, in the same order, as before the
 * record had a type. Routed requests are decisions (chat, embeddings and the protocols of SPEC
 * §13); explain and the model list go to the request log alone.
 */
export function decisionLine(r: RequestRecord): Record<string, unknown> | null {
  if (!isDecision(r.endpoint)) return null;
  const d = r.decision;
  return {
    request_id: r.request_id,
    client: r.key_name ?? undefined,
    endpoint: r.endpoint,
    session: r.session,
    bucket: r.bucket,
    route: r.route,
    reason: r.reason,
    fallback_path: r.fallback_path,
    status: r.status,
    error: r.error_code ?? undefined,
    latency_ms: r.duration_ms,
    ttfb_ms: r.ttfb_ms,
    stream: r.stream,
    pinned: d?.pinned ?? false,
    has_image: d?.has_image ?? false,
    estimated_tokens: r.estimated_tokens,
    size_tier: d?.size_tier ?? null,
    max_tokens_sent: r.max_tokens_sent,
    tokens: r.prompt_tokens !== null ? { prompt: r.prompt_tokens, completion: r.completion_tokens ?? 0 } : null,
    synthetic: r.synthetic || undefined,
    policy_hash: r.policy_hash,
    prompt: r.prompt,
  };
}

/** The JSON-lines decision log as a sink. */
export function decisionLogSink(write: (line: Record<string, unknown>) => void): RequestSink {
  return {
    write(record) {
      const line = decisionLine(record);
      if (line) write(line);
    },
  };
}
