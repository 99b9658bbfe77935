// What `homelab-router init` learned about one upstream: the input of the pure planner
// (plan.ts), produced by the probing I/O (detect.ts) or written by hand in tests.
import type { Runtime } from '../policy/types.ts';

/** A value and where it came from; `guessed` values get a comment in the written policy. */
export interface Fact<T> {
  value: T;
  /** e.g. "vLLM /v1/models max_model_len", or why the value is a guess. */
  source: string;
  guessed: boolean;
}

export interface UpstreamFacts {
  /** Route name, from --upstream NAME=URL. */
  name: string;
  /** OpenAI-compatible base URL, ending in /v1. */
  url: string;
  runtime: Runtime;
  /** e.g. "vLLM 0.11.0"; for the comment. */
  runtimeLabel: string;
  /** The served model the route will name. */
  model: string;
  /** Other models the server lists (LM Studio and Ollama load on demand); for the comment. */
  otherModels: string[];
  context?: Fact<number>;
  vision?: Fact<boolean>;
  slots?: Fact<number>;
  /** Environment variable holding the server's bearer key, when it needs one. */
  apiKeyEnv?: string;
  /** Billions of parameters, where the runtime says (Ollama's parameter_size); else read from the model name. */
  paramsB?: number;
}

export const told = <T>(value: T, source: string): Fact<T> => ({ value, source, guessed: false });
export const guessed = <T>(value: T, source: string): Fact<T> => ({ value, source, guessed: true });
