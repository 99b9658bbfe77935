// Everything that differs between vLLM, LM Studio, llama.cpp, Ollama and a plain OpenAI-style
// server lives here, as data plus two small functions per runtime. Generic code never
// branches on the runtime name.
import type { RouteConfig, Runtime } from '../policy/types.ts';

/** How a non-2xx upstream answer is treated before anything reached the client. */
export type StatusClass = 'busy' | 'failure' | 'pass';

export interface RuntimeAdapter {
  /** Probe URL for health checks and the watchdog. */
  healthUrl(route: RouteConfig): string;
  /** Classify an upstream status (with the start of its body) before commit. */
  classify(status: number, bodyHead: string): StatusClass;
}

const CUDA_ERROR = /CUDA error|CUDA out of memory|cudaError|CUBLAS_STATUS|CUDNN_STATUS|NCCL error|device-side assert|GGML_ASSERT|ggml_cuda/i;

/** The words of `text` that name a CUDA fault ("CUDA error", "GGML_ASSERT"), or null. */
export function cudaErrorWords(text: string): string | null {
  return CUDA_ERROR.exec(text)?.[0] ?? null;
}

/** True when an upstream body or error text says the GPU is poisoned. */
export function isCudaError(text: string): boolean {
  return CUDA_ERROR.test(text);
}

function origin(url: string): string {
  return new URL(url).origin;
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

/** Shared by every runtime: 429 is busy, 5xx is a failure, other statuses pass through. */
function classifyCommon(status: number): StatusClass {
  if (status === 429) return 'busy';
  if (status >= 500) return 'failure';
  return 'pass';
}

const vllm: RuntimeAdapter = {
  healthUrl: (r) => origin(r.url) + (r.health_path ?? '/health'),
  classify: classifyCommon,
};

// LM Studio: /v1/models lists downloaded models even when none is loaded (JIT), so it is a
// liveness signal only; the first request after a JIT load may be slow, which timeout_ms covers.
const lmstudio: RuntimeAdapter = {
  healthUrl: (r) => (r.health_path ? origin(r.url) + r.health_path : trimSlash(r.url) + '/models'),
  classify: classifyCommon,
};

// llama-server answers 503 "Loading model" while it loads and (older builds) 503 "no slot
// available" when every slot is busy: both mean busy, not broken.
const LLAMACPP_BUSY = /loading model|no slot available|slot unavailable|unavailable_error/i;

/** Of a busy answer: the server is up but still loading its model (not merely full). */
export function isLoadingAnswer(text: string): boolean {
  return /loading model|model is loading/i.test(text);
}

const llamacpp: RuntimeAdapter = {
  healthUrl: (r) => origin(r.url) + (r.health_path ?? '/health'),
  classify: (status, head) => (status === 503 && LLAMACPP_BUSY.test(head) ? 'busy' : classifyCommon(status)),
};

// Ollama serves the OpenAI API under /v1; /api/tags answers whenever the daemon is up.
const ollama: RuntimeAdapter = {
  healthUrl: (r) => origin(r.url) + (r.health_path ?? '/api/tags'),
  classify: (status, head) => (status === 503 && /server busy|too many/i.test(head) ? 'busy' : classifyCommon(status)),
};

const openai: RuntimeAdapter = {
  healthUrl: (r) => (r.health_path ? origin(r.url) + r.health_path : trimSlash(r.url) + '/models'),
  classify: classifyCommon,
};

const ADAPTERS: Record<Runtime, RuntimeAdapter> = { vllm, lmstudio, llamacpp, ollama, openai };

export function adapterFor(runtime: Runtime): RuntimeAdapter {
  return ADAPTERS[runtime];
}
