// The policy as written in routing_policy.yaml, after schema defaults are applied.
// Key names are the contract of SPEC §6; router/policy/compile.ts turns this into lookups.

export type Runtime = 'vllm' | 'lmstudio' | 'llamacpp' | 'ollama' | 'openai';
export type ClassifierScope = 'last_user' | 'user' | 'all';

export interface FallbackTargets {
  busy?: string;
  busy_image?: string;
  outage?: string;
}

export interface RecoveryConfig {
  managed?: boolean;
  host?: string;
  restart?: string;
  cuda?: string;
  cuda_check?: string;
}

export interface RouteConfig {
  url: string;
  model: string;
  runtime: Runtime;
  vision: boolean;
  embeddings: boolean;
  context_tokens: number;
  slots: number;
  queue: number;
  queue_timeout_ms: number;
  timeout_ms: number;
  api_key_env?: string;
  aliases?: string[];
  fallback: FallbackTargets | 'terminal';
  health_path?: string;
  recovery?: RecoveryConfig;
}

export interface HostConfig {
  address: string;
  port: number;
  user: string;
  key_file: string;
  known_hosts?: string;
  host_key_sha256?: string;
}

export type TermSpec = string | { term: string; weight?: number };

export type SignalName = 'tools' | 'code_block' | 'inline_code' | 'json_schema' | 'question';

export interface BucketConfig {
  description?: string;
  keywords?: TermSpec[];
  signals?: Partial<Record<SignalName, number>>;
  route: string;
  medium?: string;
  large?: string;
  image_route?: string;
  fail_closed: boolean;
  escalate_to?: string;
}

export interface Policy {
  version: 1;
  server: {
    listen: string;
    max_body_bytes: number;
    request_timeout_ms: number;
    stream_idle_timeout_ms: number;
  };
  logging: { prompts: boolean };
  request_log: RequestLogConfig;
  pricing: PricingConfig;
  classifier: {
    scope: ClassifierScope;
    tie_break: string[];
    default_bucket: string;
    lookback_turns: number;
    lookback_below: number;
    estimator: 'chars_div_4';
    image_bucket: string;
  };
  size_tiers: { medium: number; large: number };
  health: { interval_s: number; timeout_ms: number; unhealthy_after: number; healthy_after: number };
  routes: Record<string, RouteConfig>;
  hosts: Record<string, HostConfig>;
  buckets: Record<string, BucketConfig>;
  watchdog: {
    interval_s: number;
    restart_after_failures: number;
    cooldown_s: number;
    max_restarts_per_hour: number;
    state_file: string;
    command_timeout_ms: number;
    loading_grace_s: number;
  };
}

export interface RequestLogConfig {
  enabled: boolean;
  retention_days: number;
  rollup_retention_days: number;
  store_payloads: boolean;
  payload_retention_days: number;
  payload_max_bytes: number;
}

export interface PricingConfig {
  /** Route name or served model → catalogue model ("provider/model"). */
  reference: Record<string, string>;
  /** "provider/model" → USD per million tokens. */
  overrides: Record<string, { input_per_mtok: number; output_per_mtok: number }>;
}
