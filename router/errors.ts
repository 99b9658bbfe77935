// Every error the router answers with, in one catalogue. Callers branch on `code`;
// the HTTP status and the OpenAI `type` follow from it. README "Errors" lists the same table
// and test/unit/errors.test.ts keeps the two in step.

export const ERROR_CATALOGUE = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  request_timeout: { status: 408, type: 'invalid_request_error' },
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  host_not_allowed: { status: 421, type: 'invalid_request_error' },
  route_unmanaged: { status: 422, type: 'invalid_request_error' },
  conflict: { status: 409, type: 'invalid_request_error' },
  unauthorized: { status: 401, type: 'authentication_error' },
  admin_disabled: { status: 403, type: 'permission_error' },
  origin_not_allowed: { status: 403, type: 'permission_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  model_not_allowed: { status: 403, type: 'permission_error' },
  rate_limited: { status: 429, type: 'rate_limit_error' },
  budget_exceeded: { status: 429, type: 'insufficient_quota' },
  forbidden: { status: 403, type: 'permission_error' },
  upstream_saturated: { status: 503, type: 'server_error' },
  upstream_unavailable: { status: 503, type: 'server_error' },
  upstream_error: { status: 502, type: 'server_error' },
  request_log_unavailable: { status: 503, type: 'server_error' },
  internal_error: { status: 500, type: 'server_error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

export class RouterError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly param: string | null;
  /** Seconds for Retry-After, set on 503s. */
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { param?: string; retryAfterS?: number } = {}) {
    super(message);
    this.name = 'RouterError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.param = opts.param ?? null;
    this.retryAfterS = opts.retryAfterS;
  }

  toBody(): OpenAIErrorBody {
    return envelope(this.code, this.message, this.param);
  }
}

export function envelope(code: ErrorCode, message: string, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type: ERROR_CATALOGUE[code].type, code, param } };
}

/** Anything thrown that is not a RouterError becomes a 500 that does not leak its message. */
export function asRouterError(err: unknown): RouterError {
  if (err instanceof RouterError) return err;
  return new RouterError('internal_error', 'internal error in homelab-router; see the router log');
}
