// A request-log row as the API, the live feed and the CLI show it (SPEC §10), from the stored
// columns. Shared by the writer (live feed) and the reader (API).

import type { RequestRecord } from '../obs/request-record.ts';

/** The columns a row holds exactly as the request's record has them. */
type RecordFields = Pick<RequestRecord, 'request_id' | 'client' | 'user_agent' | 'model' | 'bucket' | 'route' | 'served_model' | 'reason' | 'fallback_path' | 'status' | 'error_code' | 'ttfb_ms' | 'duration_ms' | 'prompt_tokens' | 'completion_tokens' | 'estimated_tokens'>;

export interface RequestRow extends RecordFields {
  ts: string;
  endpoint: string;
  stream: boolean;
  cost_equivalent_usd: number | null;
  price_ref: string | null;
  attempts: unknown[];
  synthetic: boolean;
  payload_stored: boolean;
}

/** The stored columns of `requests` (attempts and decision as JSON text). */
export interface StoredRow extends RecordFields {
  id: number;
  ts: number;
  endpoint: string;
  status_class: number;
  stream: number;
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
