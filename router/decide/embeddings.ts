// The embeddings decision: routes that declare `embeddings: true`, a pinned one or the first
// of them that can take the request now. No classification, no fallback chain.
import { RouterError } from '../errors.ts';
import { AUTO_MODEL, type CompiledPolicy } from '../policy/compile.ts';
import { settle, type Skip, type StateView } from './chain.ts';
import { retryAfterForSkips, type Decision } from './engine.ts';

/** Embeddings go to routes with `embeddings: true`: a pinned one, or the first that can take it. */
export function decideEmbeddings(model: string, policy: CompiledPolicy, view: StateView): Decision {
  const capable = policy.routeNames.filter((n) => policy.route(n).embeddings);
  const pinned = model === AUTO_MODEL ? undefined : policy.modelToRoute.get(model);
  if (model !== AUTO_MODEL && pinned === undefined) throw new RouterError('model_not_found', `The model "${model}" does not exist here (GET /v1/models lists them).`, { param: 'model' });
  if (capable.length === 0) throw new RouterError('model_not_found', 'No route in this policy serves embeddings (none declares embeddings: true).', { param: 'model' });
  if (pinned !== undefined && !policy.route(pinned).embeddings) throw new RouterError('invalid_request', `Route "${pinned}" does not serve embeddings; use one of: ${capable.join(', ')}.`, { param: 'model' });
  const ctx = { policy, view, hasImage: false, tokensNeeded: 0, auto: pinned === undefined, embeddings: true };
  const candidates = pinned !== undefined ? [pinned] : capable;
  const skipped: Skip[] = [];
  let route: string | null = null;
  const visited = new Set<string>();
  for (const c of candidates) {
    const landing = settle(ctx, c, visited);
    skipped.push(...landing.skipped);
    if (landing.route !== null) {
      route = landing.route;
      break;
    }
  }
  return {
    bucket: 'embeddings', reason: pinned !== undefined ? 'pinned_model' : 'embeddings', route, intended: candidates[0]!, pinned: pinned !== undefined,
    hasImage: false, estimatedTokens: 0, requestedMaxTokens: 0, maxTokensSent: undefined, tokensNeeded: 0, sequences: 1, sizeTier: 'small', scores: {}, matched: {}, classified: undefined, skipped, fallbackChain: { busy: [], outage: [] },
    failClosed: false, escalateTo: undefined,
    error: route === null ? new RouterError('upstream_unavailable', 'No embeddings route can take this request now.', { retryAfterS: retryAfterForSkips(skipped, view, policy) }) : undefined,
  };
}
