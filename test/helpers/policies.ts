// Small policies for unit tests, built as documents and compiled through the real loader.
import { dump as dumpYaml } from 'js-yaml';
import type { CompiledPolicy } from '../../router/policy/compile.ts';
import { parsePolicyText } from '../../router/policy/load.ts';

/** A four-route lab shaped like the reference one, with tiny vocabularies. */
export function labDoc(): any {
  return {
    version: 1,
    server: { request_timeout_ms: 60000 },
    classifier: { scope: 'last_user', tie_break: ['camera', 'vision', 'coding', 'reasoning', 'fast', 'notification', 'chat', 'unknown'], default_bucket: 'unknown' },
    size_tiers: { medium: 100, large: 200 },
    // Scaled to these tiny contexts (mouth holds 300 tokens): the default 1024 would leave mouth nothing.
    context_guard: { min_output_tokens: 160 },
    routes: {
      eyes: { url: 'http://127.0.0.1:1/v1', model: 'eyes-vl', runtime: 'vllm', vision: true, context_tokens: 4000, slots: 2, aliases: ['homelab/vision'], fallback: { busy: 'mouth', busy_image: 'brain', outage: 'brain' } },
      hands: { url: 'http://127.0.0.1:2/v1', model: 'hands-coder', runtime: 'vllm', context_tokens: 4000, slots: 2, aliases: ['homelab/code'], fallback: { busy: 'mouth', outage: 'brain' } },
      brain: { url: 'http://127.0.0.1:3/v1', model: 'brain-35b', runtime: 'vllm', vision: true, context_tokens: 8000, slots: 2, aliases: ['homelab/reasoning'], fallback: 'terminal' },
      mouth: { url: 'http://127.0.0.1:4/v1', model: 'mouth-31b', runtime: 'lmstudio', context_tokens: 300, slots: 2, aliases: ['homelab/chat'], fallback: { busy: 'brain', outage: 'brain' } },
    },
    buckets: {
      camera: { keywords: ['frigate'], route: 'eyes', fail_closed: true, escalate_to: 'brain' },
      vision: { keywords: ['screenshot'], route: 'eyes' },
      coding: { keywords: ['refactor', 'python'], route: 'hands', signals: { tools: 3 } },
      reasoning: { keywords: ['trade-off', 'architecture'], route: 'brain' },
      fast: { keywords: ['classify', 'json'], route: 'eyes', medium: 'hands', large: 'brain' },
      notification: { keywords: ['push notification'], route: 'mouth', image_route: 'eyes' },
      chat: { keywords: ['joke', 'recipe'], route: 'mouth', large: 'brain' },
      unknown: { route: 'brain' },
    },
  };
}

export function compile(doc: unknown): CompiledPolicy {
  return parsePolicyText(dumpYaml(doc), 'test');
}

export function labPolicy(edit?: (doc: any) => void): CompiledPolicy {
  const doc = labDoc();
  edit?.(doc);
  return compile(doc);
}
