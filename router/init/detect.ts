// The probing half of `homelab-router init`: asks one OpenAI-compatible server what it is.
// /v1/models must answer (else the server is unreachable for the router too); then the
// runtimes' own endpoints tell which one it is and what it reports:
//   llama.cpp  GET /props          total_slots, default_generation_settings.n_ctx (per slot), modalities.vision
//   LM Studio  GET /api/v0/models  type "vlm", state "loaded", loaded_context_length / max_context_length
//   Ollama     GET /api/tags, /api/ps (context_length of a loaded model), POST /api/show (capabilities, model_info)
//   vLLM       GET /version; /v1/models max_model_len
// Anything else is `openai`: only the model name is known.
import { request } from 'undici';
import type { Runtime } from '../policy/types.ts';
import { guessed, told, type Fact, type UpstreamFacts } from './facts.ts';

export class UnreachableError extends Error {}

type Json = any;

interface Got {
  status: number;
  body: Json | null;
}

/** One request; undici follows no redirect, so a 3xx is an answer like any other. */
interface Probe {
  timeoutMs: number;
  /** Bearer key for servers started with one (vLLM --api-key, LM Studio's API tokens). */
  apiKey?: string | undefined;
}

async function call(url: string, p: Probe, post?: unknown): Promise<Got> {
  const { timeoutMs } = p;
  const res = await request(url, {
    method: post === undefined ? 'GET' : 'POST',
    headers: { ...(post === undefined ? {} : { 'content-type': 'application/json' }), ...(p.apiKey ? { authorization: `Bearer ${p.apiKey}` } : {}) },
    body: post === undefined ? null : JSON.stringify(post),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.body.text();
  let body: Json | null = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.statusCode, body };
}

/** A JSON 2xx answer, or null for anything else (404, HTML, refused, timeout). */
async function getJson(url: string, p: Probe, post?: unknown): Promise<Json | null> {
  try {
    const got = await call(url, p, post);
    return got.status >= 200 && got.status < 300 ? got.body : null;
  } catch {
    return null;
  }
}

/** `http://h:8000` and `http://h:8000/` mean `http://h:8000/v1`; a trailing slash is dropped. Throws on a non-http URL. */
export function baseUrlOf(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`"${raw}" is not a URL (for example http://192.168.1.20:8000/v1)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`"${raw}" is not an http:// or https:// URL`);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.origin}${path === '' ? '/v1' : path}`;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : undefined);

/** "8.0B", "494.03M" → billions. */
function paramsFromSize(size: unknown): number | undefined {
  const m = typeof size === 'string' ? /^([\d.]+)\s*([BM])$/i.exec(size.trim()) : null;
  if (!m) return undefined;
  return Number(m[1]) / (m[2]!.toUpperCase() === 'M' ? 1000 : 1);
}

export async function detectUpstream(name: string, rawUrl: string, timeoutMs: number, apiKey?: string): Promise<UpstreamFacts> {
  const p: Probe = { timeoutMs, apiKey };
  const url = baseUrlOf(rawUrl);
  const origin = new URL(url).origin;
  let models: Got;
  try {
    models = await call(`${url}/models`, p);
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : (e.code ?? e.message);
    throw new UnreachableError(`${name}: cannot reach ${url}/models (${why})`);
  }
  if (models.status === 401 || models.status === 403) {
    throw new UnreachableError(`${name}: ${url}/models answered ${models.status}: ${apiKey ? 'the API key was refused' : `the server wants an API key: put it in an environment variable and add --api-key-env ${name}=THAT_VARIABLE`}`);
  }
  const listed: Json[] = Array.isArray(models.body?.data) ? models.body.data : [];
  if (models.status !== 200 || !Array.isArray(models.body?.data)) {
    throw new UnreachableError(`${name}: ${url}/models answered HTTP ${models.status} without a model list: is this an OpenAI-compatible base URL (it usually ends in /v1)?`);
  }
  const ids = listed.map((m) => m?.id).filter((id): id is string => typeof id === 'string');
  if (ids.length === 0) throw new UnreachableError(`${name}: ${url}/models lists no model: load one first`);

  const [props, lms, tags, version] = await Promise.all([
    getJson(`${origin}/props`, p),
    getJson(`${origin}/api/v0/models`, p),
    getJson(`${origin}/api/tags`, p),
    getJson(`${origin}/version`, p),
  ]);

  const base = { name, url };
  if (props && (props.total_slots !== undefined || props.default_generation_settings !== undefined)) {
    return fromLlamaCpp(base, ids, props);
  }
  if (lms && Array.isArray(lms.data) && lms.data.some((m: Json) => typeof m?.type === 'string' || typeof m?.state === 'string')) {
    return fromLmStudio(base, ids, lms.data);
  }
  if (tags && Array.isArray(tags.models)) return fromOllama(base, ids, origin, p);
  const vllmCard = listed.find((m) => m?.owned_by === 'vllm') ?? (version && typeof version.version === 'string' ? listed.find((m) => num(m?.max_model_len)) : undefined);
  if (vllmCard) return fromVllm(base, listed, typeof version?.version === 'string' ? version.version : undefined);
  return {
    ...base,
    runtime: 'openai' as Runtime,
    runtimeLabel: 'an OpenAI-compatible server (not recognised as vLLM, LM Studio, llama.cpp or Ollama)',
    model: ids[0]!,
    otherModels: ids.slice(1),
  };
}

function fromVllm(base: { name: string; url: string }, listed: Json[], version: string | undefined): UpstreamFacts {
  // LoRA adapters are listed too, with the base model as parent; the base model has none.
  const card = listed.find((m) => m?.owned_by === 'vllm' && !m?.parent) ?? listed[0];
  const ctx = num(card.max_model_len);
  return {
    ...base,
    runtime: 'vllm',
    runtimeLabel: version ? `vLLM ${version}` : 'vLLM',
    model: card.id,
    otherModels: listed.map((m) => m.id).filter((id: unknown) => typeof id === 'string' && id !== card.id),
    ...(ctx ? { context: told(ctx, 'vLLM /v1/models max_model_len') } : {}),
    slots: guessed(4, 'vLLM does not report max_num_seqs; 4 keeps time to first byte low on one GPU: raise it while watching latency'),
  };
}

function fromLlamaCpp(base: { name: string; url: string }, ids: string[], props: Json): UpstreamFacts {
  const ctx = num(props.default_generation_settings?.n_ctx);
  const slots = num(props.total_slots);
  const vision = typeof props.modalities?.vision === 'boolean' ? (props.modalities.vision as boolean) : undefined;
  const model = typeof props.model_alias === 'string' && ids.includes(props.model_alias) ? props.model_alias : ids[0]!;
  return {
    ...base,
    runtime: 'llamacpp',
    runtimeLabel: typeof props.build_info === 'string' ? `llama.cpp ${props.build_info}` : 'llama.cpp',
    model,
    otherModels: ids.filter((id) => id !== model),
    ...(ctx ? { context: told(ctx, 'llama.cpp /props default_generation_settings.n_ctx (per slot: -c divided by --parallel)') } : {}),
    ...(slots ? { slots: told(slots, 'llama.cpp /props total_slots (--parallel)') } : {}),
    ...(vision !== undefined ? { vision: told(vision, 'llama.cpp /props modalities.vision (--mmproj)') } : {}),
  };
}

function fromLmStudio(base: { name: string; url: string }, ids: string[], data: Json[]): UpstreamFacts {
  const chat = data.filter((m) => m?.type !== 'embeddings' && typeof m?.id === 'string');
  const entry = chat.find((m) => m.state === 'loaded') ?? chat.find((m) => ids.includes(m.id)) ?? chat[0];
  if (!entry) throw new UnreachableError(`${base.name}: LM Studio at ${base.url} lists no chat model: download or load one first`);
  const loadedCtx = num(entry.loaded_context_length);
  const maxCtx = num(entry.max_context_length);
  const context: Fact<number> | undefined = loadedCtx
    ? told(loadedCtx, 'LM Studio /api/v0/models loaded_context_length')
    : maxCtx
      ? guessed(Math.min(maxCtx, 4096), `LM Studio: the model is not loaded; it holds ${maxCtx} tokens but loads with the context set in LM Studio (4096 assumed)`)
      : undefined;
  const mlx = entry.compatibility_type === 'mlx';
  return {
    ...base,
    runtime: 'lmstudio',
    runtimeLabel: 'LM Studio',
    model: entry.id,
    otherModels: chat.map((m) => m.id).filter((id: string) => id !== entry.id),
    ...(context ? { context } : {}),
    vision: told(entry.type === 'vlm', 'LM Studio /api/v0/models type ("vlm" sees images)'),
    slots: mlx
      ? guessed(1, 'LM Studio runs one prediction at a time on MLX models')
      : guessed(4, 'LM Studio 0.4+ runs up to 4 predictions at once by default (Max Concurrent Predictions; 1 on older versions): set it to what the model was loaded with'),
  };
}

async function fromOllama(base: { name: string; url: string }, ids: string[], origin: string, p: Probe): Promise<UpstreamFacts> {
  const [ps, ver] = await Promise.all([getJson(`${origin}/api/ps`, p), getJson(`${origin}/api/version`, p)]);
  const running: Json[] = Array.isArray(ps?.models) ? ps.models : [];
  const loaded = running.find((m) => ids.includes(m?.model) || ids.includes(m?.name));
  const model: string = loaded ? (ids.includes(loaded.model) ? loaded.model : loaded.name) : ids[0]!;
  const show = await getJson(`${origin}/api/show`, p, { model });
  const caps: unknown[] = Array.isArray(show?.capabilities) ? show.capabilities : [];
  const info = show?.model_info ?? {};
  const arch = info['general.architecture'];
  const trained = num(typeof arch === 'string' ? info[`${arch}.context_length`] : undefined);
  const allocated = num(loaded?.context_length);
  const context: Fact<number> | undefined = allocated
    ? told(allocated, 'Ollama /api/ps context_length (what is allocated now)')
    : guessed(
        Math.min(trained ?? 4096, 4096),
        `Ollama: the model is not loaded, so its context is not known yet (4K under 24 GiB of VRAM, 32K to 48 GiB, 256K above, or OLLAMA_CONTEXT_LENGTH${trained ? `; the model holds ${trained}` : ''}); 4096 assumed: check \`ollama ps\``,
      );
  const paramsB = paramsFromSize(show?.details?.parameter_size) ?? paramsFromSize(loaded?.details?.parameter_size);
  return {
    ...base,
    runtime: 'ollama',
    runtimeLabel: typeof ver?.version === 'string' ? `Ollama ${ver.version}` : 'Ollama',
    model,
    otherModels: ids.filter((id) => id !== model),
    context,
    ...(show ? { vision: told(caps.includes('vision'), 'Ollama /api/show capabilities') } : {}),
    slots: guessed(1, 'Ollama does not report OLLAMA_NUM_PARALLEL; 1 assumed: set slots to its value'),
    ...(paramsB !== undefined ? { paramsB } : {}),
  };
}
