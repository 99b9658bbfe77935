// A request-log row as the API, the live feed and the CLI show it (SPEC §10), from the stored
// columns. Shared by the writer (live feed) and the reader (API).

export interface RequestRow {
  request_id: string;
  ts: string;
  endpoint: string;
  client: string;
  user_agent: string | null;
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
  cost_equivalent_usd: number | null;
  price_ref: string | null;
  attempts: unknown[];
  synthetic: boolean;
  payload_stored: boolean;
}

/** The stored columns of `requests` (attempts and decision as JSON text). */
export interface StoredRow {
  id: number;
  request_id: string;
  ts: number;
  endpoint: string;
  client: string;
  user_agent: string | null;
  model: string | null;
  bucket: string | null;
  route: string | null;
  served_model: string | null;
  reason: string;
  fallback_path: string;
  status: number;
  status_class: number;
  error_code: string | null;
  stream: number;
  ttfb_ms: number | null;
  duration_ms: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  estimated_tokens: number | null;
  cost_equivalent_usd: number | null;
  price_ref: string | null;
  attempts: string;
  decision: string | null;
  policy_hash: string | null;
  synthetic: number;
  has_payload: number;
}

export function apiRow(s: StoredRow): RequestRow {
  return {
    request_id: s.request_id,
    ts: new Date(s.ts).toISOString(),
    endpoint: s.endpoint,
    client: s.client,
    user_agent: s.user_agent,
    model: s.model,
    bucket: s.bucket,
    route: s.route,
    served_model: s.served_model,
    reason: s.reason,
    fallback_path: s.fallback_path,
    status: s.status,
    error_code: s.error_code,
    stream: s.stream === 1,
    ttfb_ms: s.ttfb_ms,
    duration_ms: s.duration_ms,
    prompt_tokens: s.prompt_tokens,
    completion_tokens: s.completion_tokens,
    estimated_tokens: s.estimated_tokens,
    cost_equivalent_usd: s.cost_equivalent_usd,
    price_ref: s.price_ref,
    attempts: JSON.parse(s.attempts) as unknown[],
    synthetic: s.synthetic === 1,
    payload_stored: s.has_payload === 1,
  };
}
