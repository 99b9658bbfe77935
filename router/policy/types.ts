// The policy as written in routing_policy.yaml, after schema defaults are applied.
// Key names are the contract of SPEC §6; router/policy/compile.ts turns this into lookups.
import type { SystemJobConfig } from '../classify/classifier.ts';
import type { BucketVocabulary, ClassifierScope, SignalName, TermSpec } from '../classify/vocabulary.ts';

export type { BucketVocabulary, ClassifierScope, SignalName, TermSpec };
import type { PartsConfig } from '../classify/parts.ts';
import type { SimilarityConfig } from '../classify/similarity.ts';

export type Runtime = 'vllm' | 'lmstudio' | 'llamacpp' | 'ollama' | 'openai';
export type NativeProtocol = 'messages' | 'responses' | 'completions';
export type ThinkingPassthrough = 'off' | 'chat_template_kwargs' | 'reasoning_effort';

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
  /** Client protocols served natively (SPEC §13); default none. */
  native?: NativeProtocol[];
  tools?: { sanitize?: boolean };
  /** How Anthropic `thinking` reaches this route's runtime when translated; default off. */
  thinking?: ThinkingPassthrough;
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

export interface BucketConfig extends BucketVocabulary {
  description?: string;
  route: string;
  medium?: string;
  large?: string;
  image_route?: string;
  fail_closed: boolean;
  escalate_to?: string;
}

/** SPEC §5 step 6: what a route too small for the requested output gets. */
export interface ContextGuardConfig {
  min_output_tokens: number;
  mode: 'clamp' | 'skip';
}

/** Top-level `fail_closed`: bounds on a client's response_format schema and its checks. */
export interface FailClosedLimits {
  max_schema_bytes: number;
  max_schema_depth: number;
  max_schema_keywords: number;
  compile_timeout_ms: number;
  validate_timeout_ms: number;
  workers: number;
}

/** A key kept in the policy by hash (SPEC §12); read-only at run time. */
export interface StaticKeyConfig {
  name: string;
  key_sha256: string;
  models?: string[];
  endpoints?: string[];
  rpm?: number;
  max_in_flight?: number;
  monthly_tokens?: number;
  expires_at?: string;
  admin: boolean;
}

export interface AuthConfig {
  mode: 'open' | 'keys';
  answer_reserve_tokens?: number;
  keys: StaticKeyConfig[];
}

export interface Policy {
  version: 1;
  server: {
    listen: string;
    max_body_bytes: number;
    request_timeout_ms: number;
    stream_idle_timeout_ms: number;
    headers_timeout_ms: number;
    body_timeout_ms: number;
    max_connections: number;
    cors_origins: string[];
    allowed_hosts: string[];
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
    /** Phrases that open a new subject ("btw", "unrelated:"): a message holding one never looks back. */
    new_topic: string[];
    /** Tool names of a voice assistant's device control (any offered raises device_tools). */
    device_tools: string[];
    /** Tool names of a chat app's helpers (all offered raise chat_tools). */
    chat_tools: string[];
    scan_chars: number;
    estimator: 'chars_div_4';
    image_bucket: string;
    parts: PartsConfig;
    similarity: SimilarityConfig & { enabled: boolean };
    system: SystemJobConfig;
  };
  size_tiers: { medium: number; large: number };
  context_guard: ContextGuardConfig;
  health: {
    interval_s: number;
    timeout_ms: number;
    unhealthy_after: number;
    healthy_after: number;
    /** Cap on an upstream's own busy signal (Retry-After), seconds. */
    max_busy_s: number;
    /** Passive ejection after unhealthy_after request failures: base × n seconds, at most max. */
    ejection_base_s: number;
    ejection_max_s: number;
    /** Of one outage chain's non-terminal routes, the most that may be ejected at once (%, at least one). */
    max_ejected_percent: number;
    /** Admission ramp from 1 slot to `slots` after a route comes back, seconds. */
    slow_start_s: number;
  };
  routes: Record<string, RouteConfig>;
  hosts: Record<string, HostConfig>;
  buckets: Record<string, BucketConfig>;
  fail_closed: FailClosedLimits;
  watchdog: {
    interval_s: number;
    restart_after_failures: number;
    cooldown_s: number;
    max_restarts_per_hour: number;
    state_file: string;
    command_timeout_ms: number;
    loading_grace_s: number;
  };
  auth: AuthConfig;
  cluster?: ClusterConfig;
}

/** SPEC §14: replicas sharing slots, drains, health and key limits through Redis. */
export interface ClusterConfig {
  redis_url: string;
  /** Resolved at start when absent: $HOMELAB_ROUTER_REPLICA_ID, else the host name. */
  replica_id?: string;
  lease_ttl_ms: number;
  /** How many routers share the slots: sizes each one's local share while Redis is away. */
  replicas: number;
  /** Per-command timeout towards Redis, ms. */
  command_timeout_ms: number;
  key_prefix: string;
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
