// The cap on passive ejections (reliability anchor S21): however many routes fail, a
// fallback.outage chain keeps at least one of its non-terminal routes in service, so a fault
// on the router's side (its network, a bad request shape every upstream rejects with 5xx)
// cannot empty the fleet. A terminal route is not counted: down, it answers a fast 503 with
// Retry-After, which SPEC §5 step 10 asks for. Pure: policy and a view of ejections in.
import { staticChain } from '../decide/chain.ts';
import type { CompiledPolicy } from '../policy/compile.ts';

/** The non-terminal routes of the outage chain that starts at `start` (itself first). */
function nonTerminalChain(policy: CompiledPolicy, start: string): string[] {
  return [start, ...staticChain(policy, start, 'outage', false)].filter((r) => policy.route(r).fallback !== 'terminal');
}

/**
 * Whether `route` may be ejected now: in every outage chain it belongs to, the routes already
 * ejected plus this one stay within max_ejected_percent of the chain (at least one).
 */
export function mayEject(policy: CompiledPolicy, route: string, isEjected: (route: string) => boolean, percent: number): boolean {
  if (policy.route(route).fallback === 'terminal') return true;
  for (const start of policy.routeNames) {
    const chain = nonTerminalChain(policy, start);
    if (!chain.includes(route)) continue;
    const cap = Math.max(1, Math.floor((chain.length * percent) / 100));
    const already = chain.filter((r) => r !== route && isEjected(r)).length;
    if (already + 1 > cap) return false;
  }
  return true;
}
