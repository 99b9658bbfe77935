// The context guard of SPEC §5 step 6, as pure arithmetic on token counts.
//   need:  what a route's context must hold to be tried at all;
//   clamp: the max_tokens value a route gets when it holds the prompt but not the requested output.
import type { ContextGuardConfig } from '../policy/types.ts';

export const DEFAULT_CONTEXT_GUARD: ContextGuardConfig = { min_output_tokens: 1024, mode: 'clamp' };

/**
 * Tokens a route's context must hold for the request to be sent there.
 * clamp: the prompt plus `min_output_tokens` (or the requested output, when the client asked
 * for less). skip: the prompt plus the requested output (`min_output_tokens` when none was asked).
 */
export function tokensNeeded(guard: ContextGuardConfig, promptTokens: number, maxTokens: number): number {
  const asked = maxTokens > 0 ? maxTokens : guard.min_output_tokens;
  return promptTokens + (guard.mode === 'skip' ? asked : Math.min(asked, guard.min_output_tokens));
}

/**
 * The max_tokens value to send to a route of `contextTokens`, or undefined when the client's
 * value (or its absence) goes unchanged. Only lowers, never raises; only in clamp mode.
 */
export function clampedMaxTokens(guard: ContextGuardConfig, contextTokens: number, promptTokens: number, maxTokens: number): number | undefined {
  if (guard.mode !== 'clamp' || maxTokens <= 0) return undefined;
  const room = contextTokens - promptTokens;
  return maxTokens > room ? Math.max(1, room) : undefined;
}
