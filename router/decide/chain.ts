// Walking fallback chains. Pure: the policy, the request's needs and a snapshot of route
// state in, the next route to try (and every route passed over on the way) out.
// Used twice: by decide() before any attempt, and by the proxy after a busy or failed attempt.
import type { CompiledPolicy } from '../policy/compile.ts';

export interface RouteStatus {
  healthy: boolean;
  drained: boolean;
  /** When unhealthy: the router's estimate of when it may take requests again, in ms. */
  backInMs?: number;
}

/** Read-only view of live route state, taken once per decision. */
export type StateView = (route: string) => RouteStatus;

export type SkipWhy = 'drained' | 'unhealthy' | 'too_small' | 'blind' | 'no_embeddings';
export type ChainKind = 'busy' | 'outage';

export interface Skip {
  route: string;
  why: SkipWhy;
}

export interface ChainContext {
  policy: CompiledPolicy;
  view: StateView;
  hasImage: boolean;
  /** Prompt estimate + max_tokens: what a route's context must hold. */
  tokensNeeded: number;
  /** Auto-routed traffic skips drained routes; pins pass through them. */
  auto: boolean;
  /** Embeddings requests may only land on routes that declare `embeddings: true`. */
  embeddings?: boolean;
}

export interface Landing {
  route: string | null;
  skipped: Skip[];
}

/** The route `from` hands a request to when it is busy or out. null: terminal, or the chain ends. */
export function nextHop(policy: CompiledPolicy, from: string, kind: ChainKind, hasImage: boolean): string | null {
  const fb = policy.route(from).fallback;
  if (fb === 'terminal') return null;
  if (kind === 'busy') return (hasImage ? fb.busy_image : fb.busy) ?? null;
  return fb.outage ?? null;
}

/** Why `route` cannot take the request right now, or null when it can be tried. */
export function skipReason(ctx: ChainContext, route: string): SkipWhy | null {
  const cfg = ctx.policy.route(route);
  if (ctx.hasImage && !cfg.vision) return 'blind';
  if (ctx.embeddings && !cfg.embeddings) return 'no_embeddings';
  if (cfg.context_tokens < ctx.tokensNeeded) return 'too_small';
  const status = ctx.view(route);
  if (!status.healthy) return 'unhealthy';
  if (ctx.auto && status.drained) return 'drained';
  return null;
}

/**
 * Starting at `start`, the first route that can be tried. Routes passed over follow their
 * own chain: drained ones spill like busy ones, the rest like an outage. `visited` carries
 * across calls so a request never tries a route twice.
 */
export function settle(ctx: ChainContext, start: string | null, visited: Set<string>): Landing {
  const skipped: Skip[] = [];
  let at = start;
  while (at !== null && !visited.has(at)) {
    visited.add(at);
    const why = skipReason(ctx, at);
    if (why === null) return { route: at, skipped };
    skipped.push({ route: at, why });
    at = nextHop(ctx.policy, at, why === 'drained' ? 'busy' : 'outage', ctx.hasImage);
  }
  return { route: null, skipped };
}

/** After `from` was busy or failed: where the request goes next. */
export function advance(ctx: ChainContext, from: string, kind: ChainKind, visited: Set<string>): Landing {
  return settle(ctx, nextHop(ctx.policy, from, kind, ctx.hasImage), visited);
}

/** The static chain of one kind from `route`, for explain output (blind routes left out for images). */
export function staticChain(policy: CompiledPolicy, route: string, kind: ChainKind, hasImage: boolean): string[] {
  const chain: string[] = [];
  const seen = new Set([route]);
  let at = nextHop(policy, route, kind, hasImage);
  while (at !== null && !seen.has(at)) {
    seen.add(at);
    if (!hasImage || policy.route(at).vision) chain.push(at);
    at = nextHop(policy, at, kind, hasImage);
  }
  return chain;
}
