// What the watchdog should do for one route this round, as a pure function of the route's
// state (already updated with this round's probe), its config and the clock. Everything
// that touches SSH, files or logs lives in watchdog.ts; this is the part worth testing hard.
import type { Policy, RouteConfig } from '../policy/types.ts';
import { recentActions, type RouteState } from './watchdog-state.ts';

export type PlannedAction = 'none' | 'restart' | 'cuda' | 'page';

export type PlanEvent = 'operator_page_required' | 'no_recovery_configured' | 'recovery_backoff';

export interface Plan {
  action: PlannedAction;
  why: string;
  /** The recovery-events line this plan calls for, when it is not an action's own line. */
  event?: PlanEvent;
  /** Set when backoff holds back an action the route otherwise needs. */
  deferred?: 'restart' | 'cuda';
}

export type WatchdogConfig = Policy['watchdog'];

export type PlanState = Pick<RouteState, 'consecutive_failures' | 'cuda_suspected' | 'last_action_at' | 'actions' | 'paged' | 'loading_since'>;

export function planAction(s: PlanState, route: RouteConfig, wd: WatchdogConfig, now: number): Plan {
  const threshold = wd.restart_after_failures;
  const down = s.consecutive_failures >= threshold;
  const failures = `${s.consecutive_failures}/${threshold} failed probes`;
  if (s.consecutive_failures === 0 && !s.cuda_suspected) {
    return { action: 'none', why: s.loading_since !== null ? `loading its model (not an outage for up to ${wd.loading_grace_s} s)` : 'healthy' };
  }

  const rec = route.recovery ?? {};
  if (rec.managed === false) {
    if (!down && !s.cuda_suspected) return { action: 'none', why: `${failures}; not yet an outage` };
    if (s.paged) return { action: 'none', why: 'unmanaged route still down; operator already paged for this outage' };
    const what = s.cuda_suspected ? 'CUDA fault' : `down (${failures})`;
    return { action: 'page', why: `${what} on a managed: false route; the router never recovers it`, event: 'operator_page_required' };
  }

  let wanted: 'restart' | 'cuda';
  let why: string;
  if (s.cuda_suspected && rec.cuda) {
    // A poisoned GPU survives a plain restart, so the CUDA runbook wins even before the
    // failure threshold: one CUDA error is evidence enough.
    wanted = 'cuda';
    why = 'CUDA fault seen';
  } else if (down && rec.restart) {
    wanted = 'restart';
    why = `down (${failures})${s.cuda_suspected ? '; CUDA fault seen but no recovery.cuda' : ''}`;
  } else if (down || s.cuda_suspected) {
    if (s.paged) return { action: 'none', why: 'no recovery command for this fault; operator already told' };
    const missing = s.cuda_suspected && !down ? 'recovery.cuda' : 'recovery.restart';
    const what = s.cuda_suspected && !down ? 'CUDA fault seen' : `down (${failures})`;
    return { action: 'page', why: `${what} and no ${missing} configured`, event: 'no_recovery_configured' };
  } else {
    return { action: 'none', why: `${failures}; waiting for ${threshold}` };
  }

  const lastHour = recentActions(s.actions, now);
  if (lastHour.length >= wd.max_restarts_per_hour) {
    return {
      action: 'none',
      why: `${why}; hourly cap reached (${lastHour.length}/${wd.max_restarts_per_hour} recoveries in the last hour)`,
      event: 'recovery_backoff',
      deferred: wanted,
    };
  }
  if (s.last_action_at !== null && now - s.last_action_at < wd.cooldown_s * 1000) {
    const left = Math.ceil((s.last_action_at + wd.cooldown_s * 1000 - now) / 1000);
    return { action: 'none', why: `${why}; cooldown (${left}s of ${wd.cooldown_s}s left)`, event: 'recovery_backoff', deferred: wanted };
  }
  return { action: wanted, why };
}
