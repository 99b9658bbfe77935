// A request-log row as the API, the live feed and the CLI show it (SPEC §10), from the stored
// columns. Shared by the writer (live feed) and the reader (API). And the row as it travels
// from the router's main thread to the log's worker: its column values in insert order.

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

/** The columns of `requests` in the order the writer binds them (the row id is SQLite's). */
export const ROW_COLUMNS = [
  'request_id', 'ts', 'endpoint', 'client', 'user_agent', 'model', 'bucket', 'route', 'served_model', 'reason', 'fallback_path', 'status', 'status_class',
  'error_code', 'stream', 'ttfb_ms', 'duration_ms', 'prompt_tokens', 'completion_tokens', 'estimated_tokens', 'cost_equivalent_usd', 'price_ref', 'attempts',
  'decision', 'policy_hash', 'synthetic', 'has_payload',
] as const satisfies ReadonlyArray<keyof StoredRow>;

type Payload = NonNullable<RequestRecord['payload']>;

/**
 * A finished request as the main thread queues it and hands it to the worker: the stored
 * columns in ROW_COLUMNS order, attempts and decision already JSON text, so the worker binds it
 * as it is. The cost-equivalent and its reference are filled in by the worker (it prices), and
 * has_payload holds the bodies themselves until the worker stores them and sets it to 1 or 0.
 * An array of plain values: a quick structured clone, and nothing of the request's objects is
 * kept alive while it waits in the queue.
 */
export type WireRow = [
  request_id: string, ts: number, endpoint: string, client: string, user_agent: string | null, model: string | null, bucket: string | null,
  route: string | null, served_model: string | null, reason: string, fallback_path: string, status: number, status_class: number,
  error_code: string | null, stream: number, ttfb_ms: number | null, duration_ms: number, prompt_tokens: number | null, completion_tokens: number | null,
  estimated_tokens: number | null, cost_equivalent_usd: number | null, price_ref: string | null, attempts: string, decision: string | null,
  policy_hash: string | null, synthetic: number, has_payload: number | Payload,
];

/** Positions in a WireRow, by column (ROW_COLUMNS.indexOf, written out so the types know each). */
export const W = {
  request_id: 0, ts: 1, endpoint: 2, client: 3, user_agent: 4, model: 5, bucket: 6, route: 7, served_model: 8, reason: 9, fallback_path: 10, status: 11, status_class: 12,
  error_code: 13, stream: 14, ttfb_ms: 15, duration_ms: 16, prompt_tokens: 17, completion_tokens: 18, estimated_tokens: 19, cost_equivalent_usd: 20, price_ref: 21,
  attempts: 22, decision: 23, policy_hash: 24, synthetic: 25, has_payload: 26,
} as const satisfies { readonly [C in (typeof ROW_COLUMNS)[number]]: number };

export function wireRow(r: RequestRecord): WireRow {
  return [
    r.request_id, r.ts, r.endpoint, r.client, r.user_agent, r.model, r.bucket, r.route, r.served_model, r.reason, r.fallback_path, r.status, Math.floor(r.status / 100),
    r.error_code, r.stream ? 1 : 0, r.ttfb_ms, r.duration_ms, r.prompt_tokens, r.completion_tokens, r.estimated_tokens, null, null, JSON.stringify(r.attempts),
    r.decision ? JSON.stringify(r.decision) : null, r.policy_hash, r.synthetic ? 1 : 0, r.payload ?? 0,
  ];
}

/** A wire row's columns by name (the live feed's rows). */
export function storedRowOf(w: WireRow, id = 0): StoredRow {
  const s = { id } as Record<string, unknown>;
  for (let c = 0; c < ROW_COLUMNS.length; c++) s[ROW_COLUMNS[c]!] = w[c];
  if (typeof s.has_payload !== 'number') s.has_payload = 0;
  return s as unknown as StoredRow;
}
