// Fault catalogue and canned answers for the simulated upstream. The bodies copy the shapes
// the real engines send (vLLM, llama.cpp, LM Studio, Ollama) because the router's error
// mapping is tested against them, so they must not drift towards a tidier shape.

export type SimRuntime = 'vllm' | 'lmstudio' | 'llamacpp' | 'ollama';

export type Fault =
  /** Answer at once with this status; the body defaults to an OpenAI error envelope. */
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** llama.cpp 503 "Loading model". */
  | { kind: 'loading' }
  /** 500 with a CUDA error body, as vLLM answers after a device fault. */
  | { kind: 'cuda' }
  /** Accept the request and never send headers, until the client goes away. */
  | { kind: 'hang' }
  /**
   * Send 200, then `chunks` SSE events (the role event counts, [DONE] never comes), then drop
   * the connection. A non-streamed reply sends its headers and half its body instead.
   */
  | { kind: 'die_after'; chunks: number }
  /** As die_after, but then nothing more until the client goes away. */
  | { kind: 'stall_after'; chunks: number }
  /** Reset the connection without answering. */
  | { kind: 'refuse' }
  /** Reply normally with this assistant content. */
  | { kind: 'reply'; content: string }
  /** A non-JSON error page, as a reverse proxy in front of the engine would send. */
  | { kind: 'html'; status: number }
  /** Extra time before the headers. */
  | { kind: 'delay'; ms: number }
  /**
   * Headers with this status, then `head`, then filler without end (every `trickleMs`, or as
   * fast as the client reads) until the client goes away: an error page that never finishes.
   */
  | { kind: 'endless'; status: number; head?: string; contentType?: string; trickleMs?: number }
  /** As die_after, but the connection drops in the middle of the next event (half a `data:` line). */
  | { kind: 'die_mid_event'; chunks: number };

/** 'endless': the health path answers 200 and a body that never ends. */
export type HealthState = null | 'down' | 'cuda' | 'loading' | 'endless';

export interface Canned {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export const LOADING_BODY = { error: { code: 503, message: 'Loading model', type: 'unavailable_error' } };
export const CUDA_BODY = {
  error: { message: 'CUDA error: unspecified launch failure', type: 'InternalServerError', code: 500 },
};

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Canned {
  return {
    status,
    body: body === undefined ? '' : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  };
}

export function openaiError(message: string, type: string, code: number | string): unknown {
  return { error: { message, type, param: null, code } };
}

export function vllmError(status: number, message: string, type: string): unknown {
  return { object: 'error', message, type, param: null, code: status };
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function reason(status: number): string {
  return REASONS[status] ?? 'Error';
}

/** The answer for a fault that responds before any generation starts; null for the others. */
export function immediateAnswer(f: Fault): Canned | null {
  switch (f.kind) {
    case 'status': {
      const type = f.status === 429 ? 'rate_limit_error' : f.status >= 500 ? 'server_error' : 'invalid_request_error';
      const body = f.body ?? openaiError(`simulated ${f.status} ${reason(f.status)}`, type, f.status);
      return json(f.status, body, f.headers);
    }
    case 'loading':
      return json(503, LOADING_BODY);
    case 'cuda':
      return json(500, CUDA_BODY);
    case 'html': {
      const title = `${f.status} ${reason(f.status)}`;
      return {
        status: f.status,
        body: `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
        headers: { 'content-type': 'text/html' },
      };
    }
    default:
      return null;
  }
}

/** What each engine answers when every slot is taken and it does not queue. */
export function overflowAnswer(runtime: SimRuntime): Canned {
  switch (runtime) {
    case 'lmstudio':
      return json(429, openaiError('Too many concurrent requests; no slot available', 'rate_limit_error', 429));
    case 'ollama':
      return json(503, { error: 'server busy, please try again.  maximum pending requests exceeded' });
    default:
      return json(503, { error: { code: 503, message: 'no slot available', type: 'unavailable_error' } });
  }
}

/** GET on a health path: `path` is one of the paths the runtime serves. */
export function healthAnswer(runtime: SimRuntime, state: HealthState, path: string, model: string, contextTokens?: number): Canned {
  if (state === 'down') return json(503, openaiError('Service Unavailable', 'unavailable_error', 503));
  if (state === 'cuda') return json(500, CUDA_BODY);
  if (state === 'loading') return json(503, LOADING_BODY);
  if (path === '/api/tags') {
    return json(200, {
      models: [{ name: model, model, modified_at: '2025-01-01T00:00:00Z', size: 0, digest: '', details: {} }],
    });
  }
  if (path === '/health') {
    // vLLM answers an empty 200; llama.cpp a small JSON status.
    return runtime === 'llamacpp' ? json(200, { status: 'ok' }) : { status: 200, body: '', headers: {} };
  }
  // vLLM's ModelCard carries max_model_len.
  const card = runtime === 'vllm' && contextTokens !== undefined ? { max_model_len: contextTokens } : {};
  return json(200, { object: 'list', data: [{ id: model, object: 'model', owned_by: runtime, ...card }] });
}

/** Paths a health probe may use on each runtime; LM Studio has only /v1/models. */
export function healthPaths(runtime: SimRuntime): Set<string> {
  const paths = new Set(['/v1/models']);
  if (runtime === 'vllm' || runtime === 'llamacpp') paths.add('/health');
  if (runtime === 'ollama') paths.add('/api/tags');
  return paths;
}
