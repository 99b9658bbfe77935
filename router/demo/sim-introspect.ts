// What each simulated runtime says about itself beyond /v1/models: the endpoints
// `homelab-router init` reads to detect a runtime, its model, context, vision and slots. The
// shapes follow the engines' own answers (field names and nesting), trimmed to what matters:
//   vLLM       GET /version {"version"}; /v1/models carries max_model_len (ModelCard)
//   llama.cpp  GET /props {default_generation_settings.n_ctx (per slot), total_slots, modalities}
//   LM Studio  GET /api/v0/models {data:[{id,type:"llm"|"vlm"|"embeddings",state,max_context_length,loaded_context_length}]}
//   Ollama     GET /api/version, GET /api/ps, POST /api/show {model_info, capabilities, details}
import { json, type Canned, type SimRuntime } from './sim-faults.ts';

export interface SimIdentity {
  runtime: SimRuntime;
  model: string;
  /** Context the engine serves; llama.cpp reports it per slot. */
  contextTokens: number;
  vision: boolean;
  slots: number;
  /** Ollama: whether /api/ps lists the model as loaded (it then reports its allocated context). */
  loaded: boolean;
}

const ARCH = 'llama';

/** GET answers; null when the path is not one of this runtime's. */
export function introspectGet(id: SimIdentity, path: string): Canned | null {
  switch (id.runtime) {
    case 'vllm':
      return path === '/version' ? json(200, { version: '0.11.0' }) : null;
    case 'llamacpp':
      if (path !== '/props') return null;
      return json(200, {
        default_generation_settings: { n_ctx: id.contextTokens, params: { n_predict: -1, temperature: 0.8 } },
        total_slots: id.slots,
        model_alias: id.model,
        model_path: `/models/${id.model}.gguf`,
        modalities: { vision: id.vision, audio: false },
        build_info: 'b6000-sim',
      });
    case 'lmstudio':
      if (path !== '/api/v0/models') return null;
      return json(200, {
        object: 'list',
        data: [
          {
            id: id.model,
            object: 'model',
            type: id.vision ? 'vlm' : 'llm',
            publisher: 'lmstudio-community',
            arch: ARCH,
            compatibility_type: 'gguf',
            quantization: 'Q4_K_M',
            state: 'loaded',
            max_context_length: Math.max(id.contextTokens, 131072),
            loaded_context_length: id.contextTokens,
          },
          { id: 'text-embedding-nomic-embed-text-v1.5', object: 'model', type: 'embeddings', publisher: 'nomic-ai', arch: 'nomic-bert', compatibility_type: 'gguf', quantization: 'Q4_K_M', state: 'not-loaded', max_context_length: 2048 },
        ],
      });
    case 'ollama':
      if (path === '/api/version') return json(200, { version: '0.12.6' });
      if (path !== '/api/ps') return null;
      return json(200, {
        models: id.loaded
          ? [{ name: id.model, model: id.model, size: 0, digest: '', details: ollamaDetails(), expires_at: '2099-01-01T00:00:00Z', size_vram: 0, context_length: id.contextTokens }]
          : [],
      });
  }
}

/** POST /api/show on Ollama: the named model's metadata, or Ollama's 404. */
export function ollamaShow(id: SimIdentity, body: unknown): Canned {
  const name = (body as { model?: unknown; name?: unknown } | null)?.model ?? (body as { name?: unknown } | null)?.name;
  if (name !== id.model) return json(404, { error: `model '${String(name)}' not found` });
  return json(200, {
    modelfile: `FROM ${id.model}`,
    parameters: 'stop "<|eot_id|>"',
    template: '{{ .Prompt }}',
    details: ollamaDetails(),
    // The model's trained context, not what Ollama allocates (that is /api/ps's context_length).
    model_info: { 'general.architecture': ARCH, 'general.parameter_count': 8030261248, [`${ARCH}.context_length`]: 131072 },
    capabilities: id.vision ? ['completion', 'vision', 'tools'] : ['completion', 'tools'],
    modified_at: '2025-01-01T00:00:00Z',
  });
}

function ollamaDetails(): Record<string, unknown> {
  return { parent_model: '', format: 'gguf', family: ARCH, families: [ARCH], parameter_size: '8.0B', quantization_level: 'Q4_K_M' };
}
