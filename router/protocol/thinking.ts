// Anthropic `thinking` passed on to a translated route, when the route says how its runtime takes
// it (`routes.<r>.thinking`, default off: the request is answered without thinking, as a chat
// request would be). Pure: the fields to add to the chat body sent to that route.
import type { ThinkingPassthrough } from '../policy/types.ts';

export interface ThinkingRequest {
  type: string;
  budget_tokens?: number;
}

/** Budgets at or above these ask for medium / high effort; below, low. */
const MEDIUM_FROM = 4096;
const HIGH_FROM = 16384;

function wantsThinking(t: ThinkingRequest | null): boolean {
  return t !== null && (t.type === 'enabled' || t.type === 'adaptive');
}

export function effortFor(budget: number | undefined): 'low' | 'medium' | 'high' {
  if (budget === undefined || budget >= HIGH_FROM) return 'high';
  return budget >= MEDIUM_FROM ? 'medium' : 'low';
}

/**
 * - `chat_template_kwargs` (vLLM, SGLang, Qwen3-style templates): `enable_thinking` true when the
 *   client asked for thinking, false otherwise, so the answer matches what was asked;
 * - `reasoning_effort` (OpenAI-compatible reasoning models): low/medium/high from
 *   `budget_tokens`, only when thinking was asked for;
 * - `off`: nothing.
 */
export function thinkingFields(mode: ThinkingPassthrough | undefined, thinking: ThinkingRequest | null, existingKwargs?: unknown): Record<string, unknown> {
  const on = wantsThinking(thinking);
  switch (mode) {
    case 'chat_template_kwargs': {
      const kwargs = existingKwargs !== null && typeof existingKwargs === 'object' ? (existingKwargs as Record<string, unknown>) : {};
      return { chat_template_kwargs: { ...kwargs, enable_thinking: on } };
    }
    case 'reasoning_effort':
      return on ? { reasoning_effort: effortFor(thinking!.budget_tokens) } : {};
    default:
      return {};
  }
}
