import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RecoveryConfig, RouteConfig } from '../../router/policy/types.ts';
import { planAction, type PlanState, type WatchdogConfig } from '../../router/recovery/watchdog-plan.ts';
import { emptyRouteState, loadState, observe, saveState } from '../../router/recovery/watchdog-state.ts';

const NOW = 1_700_000_000_000;
const S = 1000;
const WD: WatchdogConfig = { interval_s: 60, restart_after_failures: 2, cooldown_s: 600, max_restarts_per_hour: 3, state_file: 'watchdog-state.json', command_timeout_ms: 120_000, loading_grace_s: 900 };

function route(recovery?: RecoveryConfig): RouteConfig {
  return {
    url: 'http://gpu.lan:8000/v1',
    model: 'm',
    runtime: 'vllm',
    vision: false,
    embeddings: false,
    context_tokens: 32768,
    slots: 1,
    queue: 0,
    queue_timeout_ms: 1000,
    timeout_ms: 1000,
    fallback: 'terminal',
    ...(recovery ? { recovery } : {}),
  };
}

const FULL = route({ host: 'gpu', restart: 'systemctl --user restart vllm', cuda: 'scripts/recover-cuda.sh vllm http://127.0.0.1:8000/v1/models' });
const RESTART_ONLY = route({ host: 'gpu', restart: 'systemctl --user restart vllm' });
const CUDA_ONLY = route({ host: 'gpu', cuda: 'scripts/recover-cuda.sh vllm http://127.0.0.1:8000/v1/models' });
const UNMANAGED = route({ managed: false });
const UNMANAGED_WITH_COMMANDS = route({ managed: false, host: 'gpu', restart: 'reboot', cuda: 'reboot' });

function st(over: Partial<PlanState> = {}): PlanState {
  return Object.freeze({ consecutive_failures: 0, cuda_suspected: false, last_action_at: null, actions: Object.freeze([]) as unknown as number[], paged: false, loading_since: null, ...over });
}

describe('planAction: failure threshold', () => {
  test('a healthy route needs nothing', () => {
    assert.deepEqual(planAction(st(), FULL, WD, NOW), { action: 'none', why: 'healthy' });
  });

  test('below restart_after_failures it waits', () => {
    const p = planAction(st({ consecutive_failures: 1 }), FULL, WD, NOW);
    assert.equal(p.action, 'none');
    assert.equal(p.event, undefined);
    assert.match(p.why, /1\/2 failed probes/);
  });

  test('at and above the threshold it restarts', () => {
    assert.equal(planAction(st({ consecutive_failures: 2 }), FULL, WD, NOW).action, 'restart');
    assert.equal(planAction(st({ consecutive_failures: 7 }), RESTART_ONLY, WD, NOW).action, 'restart');
  });

  test('restart_after_failures: 1 restarts on the first failure', () => {
    assert.equal(planAction(st({ consecutive_failures: 1 }), FULL, { ...WD, restart_after_failures: 1 }, NOW).action, 'restart');
  });
});

describe('planAction: backoff', () => {
  const down = { consecutive_failures: 3 };

  test('inside cooldown_s the action is deferred and says so', () => {
    const p = planAction(st({ ...down, last_action_at: NOW - 599 * S, actions: [NOW - 599 * S] }), FULL, WD, NOW);
    assert.equal(p.action, 'none');
    assert.equal(p.deferred, 'restart');
    assert.equal(p.event, 'recovery_backoff');
    assert.match(p.why, /cooldown \(1s of 600s left\)/);
  });

  test('once cooldown_s has passed it acts again', () => {
    assert.equal(planAction(st({ ...down, last_action_at: NOW - 600 * S, actions: [NOW - 600 * S] }), FULL, WD, NOW).action, 'restart');
  });

  test('cooldown_s: 0 never holds back', () => {
    assert.equal(planAction(st({ ...down, last_action_at: NOW, actions: [NOW] }), FULL, { ...WD, cooldown_s: 0 }, NOW).action, 'restart');
  });

  test('max_restarts_per_hour caps actions in any rolling hour', () => {
    const actions = [NOW - 50 * 60 * S, NOW - 30 * 60 * S, NOW - 11 * 60 * S];
    const p = planAction(st({ ...down, last_action_at: actions[2]!, actions }), FULL, WD, NOW);
    assert.equal(p.action, 'none');
    assert.equal(p.deferred, 'restart');
    assert.equal(p.event, 'recovery_backoff');
    assert.match(p.why, /hourly cap reached \(3\/3/);
  });

  test('actions older than an hour no longer count', () => {
    const actions = [NOW - 61 * 60 * S, NOW - 30 * 60 * S, NOW - 11 * 60 * S];
    assert.equal(planAction(st({ ...down, last_action_at: actions[2]!, actions }), FULL, WD, NOW).action, 'restart');
  });

  test('max_restarts_per_hour: 0 never acts', () => {
    const p = planAction(st(down), FULL, { ...WD, max_restarts_per_hour: 0 }, NOW);
    assert.equal(p.action, 'none');
    assert.equal(p.deferred, 'restart');
  });

  test('the CUDA runbook is subject to the same backoff', () => {
    const p = planAction(st({ cuda_suspected: true, last_action_at: NOW - 10 * S, actions: [NOW - 10 * S] }), FULL, WD, NOW);
    assert.equal(p.action, 'none');
    assert.equal(p.deferred, 'cuda');
  });
});

describe('planAction: CUDA faults', () => {
  test('one CUDA fault is enough, even before the failure threshold', () => {
    const p = planAction(st({ cuda_suspected: true }), FULL, WD, NOW);
    assert.equal(p.action, 'cuda');
    assert.match(p.why, /CUDA/);
  });

  test('CUDA wins over restart when both apply', () => {
    assert.equal(planAction(st({ consecutive_failures: 5, cuda_suspected: true }), FULL, WD, NOW).action, 'cuda');
    assert.equal(planAction(st({ consecutive_failures: 5, cuda_suspected: true }), CUDA_ONLY, WD, NOW).action, 'cuda');
  });

  test('without recovery.cuda a down route still gets its restart', () => {
    const p = planAction(st({ consecutive_failures: 2, cuda_suspected: true }), RESTART_ONLY, WD, NOW);
    assert.equal(p.action, 'restart');
    assert.match(p.why, /no recovery\.cuda/);
  });

  test('without recovery.cuda a CUDA fault on an answering route is reported, once', () => {
    const p = planAction(st({ cuda_suspected: true }), RESTART_ONLY, WD, NOW);
    assert.equal(p.action, 'page');
    assert.equal(p.event, 'no_recovery_configured');
    assert.match(p.why, /recovery\.cuda/);
    assert.equal(planAction(st({ cuda_suspected: true, paged: true }), RESTART_ONLY, WD, NOW).action, 'none');
  });
});

describe('planAction: managed: false', () => {
  test('below the threshold nothing happens', () => {
    assert.equal(planAction(st({ consecutive_failures: 1 }), UNMANAGED, WD, NOW).action, 'none');
  });

  test('down: page the operator once per outage', () => {
    const first = planAction(st({ consecutive_failures: 2 }), UNMANAGED, WD, NOW);
    assert.equal(first.action, 'page');
    assert.equal(first.event, 'operator_page_required');
    const later = planAction(st({ consecutive_failures: 30, paged: true }), UNMANAGED, WD, NOW);
    assert.equal(later.action, 'none');
    assert.equal(later.event, undefined);
  });

  test('a CUDA fault pages too, and never runs a command even if one is written down', () => {
    assert.equal(planAction(st({ cuda_suspected: true }), UNMANAGED, WD, NOW).action, 'page');
    for (const s of [st({ consecutive_failures: 9 }), st({ cuda_suspected: true }), st({ consecutive_failures: 9, cuda_suspected: true })]) {
      assert.equal(planAction(s, UNMANAGED_WITH_COMMANDS, WD, NOW).action, 'page');
    }
  });

  test('backoff does not apply to paging', () => {
    const p = planAction(st({ consecutive_failures: 2, last_action_at: NOW, actions: [NOW, NOW, NOW] }), UNMANAGED, WD, NOW);
    assert.equal(p.action, 'page');
  });
});

describe('planAction: no recovery command', () => {
  test('a down route with no recovery block says so, once', () => {
    const p = planAction(st({ consecutive_failures: 2 }), route(), WD, NOW);
    assert.equal(p.action, 'page');
    assert.equal(p.event, 'no_recovery_configured');
    assert.match(p.why, /no recovery\.restart/);
    assert.equal(planAction(st({ consecutive_failures: 3, paged: true }), route(), WD, NOW).action, 'none');
  });

  test('a host but no commands is the same', () => {
    assert.equal(planAction(st({ consecutive_failures: 2 }), route({ host: 'gpu' }), WD, NOW).event, 'no_recovery_configured');
  });

  test('only recovery.cuda and a plain outage: nothing to run', () => {
    const p = planAction(st({ consecutive_failures: 2 }), CUDA_ONLY, WD, NOW);
    assert.equal(p.action, 'page');
    assert.equal(p.event, 'no_recovery_configured');
  });
});

describe('observe', () => {
  const probe = (ok: boolean, cuda = false) => ({ ok, cuda, at: NOW, ...(ok ? {} : { error: 'HTTP 503', status: 503 }) });
  const ctx = { cudaNoted: false, cudaCheckFailed: false, threshold: 2, now: NOW, loadingGraceMs: 900 * S };

  test('counts failures in a row and resets on success', () => {
    const s = emptyRouteState();
    observe(s, probe(false), ctx);
    observe(s, probe(false), ctx);
    assert.equal(s.consecutive_failures, 2);
    assert.deepEqual(s.last_failure, { at: NOW, error: 'HTTP 503', status: 503 });
    s.paged = true;
    assert.deepEqual(observe(s, probe(true), ctx), { recovered: true });
    assert.equal(s.consecutive_failures, 0);
    assert.equal(s.paged, false);
  });

  test('a single blip that healed is not a recovery worth logging', () => {
    const s = emptyRouteState();
    observe(s, probe(false), ctx);
    assert.deepEqual(observe(s, probe(true), ctx), { recovered: false });
  });

  test('CUDA evidence: probe, request path or cuda_check; carried only while unhealthy', () => {
    const s = emptyRouteState();
    observe(s, probe(true), { ...ctx, cudaNoted: true });
    assert.equal(s.cuda_suspected, true);
    observe(s, probe(false), ctx);
    assert.equal(s.cuda_suspected, true, 'still failing: keep the suspicion');
    observe(s, probe(true), ctx);
    assert.equal(s.cuda_suspected, false);
    observe(s, probe(true), { ...ctx, cudaCheckFailed: true });
    assert.equal(s.cuda_suspected, true);
    observe(s, probe(false, true), ctx);
    assert.equal(s.cuda_suspected, true);
  });

  const busy = (at: number, loading: boolean) => ({ ok: false, busy: true, loading, cuda: false, at, status: 503, error: 'HTTP 503: Loading model' });

  test('S24: a busy answer ends a run of failures without being a recovery; full is never an outage', () => {
    const s = emptyRouteState();
    s.paged = true;
    observe(s, probe(false), ctx);
    assert.deepEqual(observe(s, busy(NOW, false), ctx), { recovered: false });
    assert.equal(s.consecutive_failures, 0, 'it answers: the server is up');
    assert.equal(s.paged, true, 'paged stays until it is healthy');
    assert.equal(s.loading_since, null, 'full is not loading');
    assert.equal(planAction(s, FULL, WD, NOW).action, 'none');
    for (let i = 1; i <= 30; i++) observe(s, busy(NOW + i * 3600 * S, false), { ...ctx, now: NOW + i * 3600 * S });
    assert.equal(s.consecutive_failures, 0, 'full for 30 hours is still not down');
    assert.deepEqual(observe(s, probe(true), ctx), { recovered: true });
  });

  test('S24: a model still loading counts as down only after loadingGraceMs, from the first such answer or the last action', () => {
    const s = emptyRouteState();
    observe(s, busy(NOW, true), ctx);
    observe(s, busy(NOW + 899 * S, true), ctx);
    assert.equal(s.consecutive_failures, 0);
    assert.equal(s.loading_since, NOW);
    assert.deepEqual(planAction(s, FULL, WD, NOW + 899 * S), { action: 'none', why: 'loading its model (not an outage for up to 900 s)' });

    observe(s, busy(NOW + 900 * S, true), ctx);
    assert.equal(s.consecutive_failures, 1);
    assert.equal(s.last_failure?.error, 'still loading its model after 900 s (HTTP 503: Loading model)');
    observe(s, busy(NOW + 960 * S, true), ctx);
    assert.equal(planAction(s, FULL, WD, NOW + 960 * S).action, 'restart');

    // The restart starts a new load: it gets its own grace.
    s.last_action_at = NOW + 960 * S;
    observe(s, busy(NOW + 1020 * S, true), ctx);
    assert.equal(s.consecutive_failures, 0);
    observe(s, busy(NOW + 1860 * S, true), ctx);
    assert.equal(s.consecutive_failures, 1);

    // loading_grace_s: 0 gives a load no time at all, and still never counts a full server.
    const strict = { ...ctx, loadingGraceMs: 0 };
    const t = emptyRouteState();
    observe(t, busy(NOW, false), strict);
    assert.equal(t.consecutive_failures, 0);
    observe(t, busy(NOW, true), strict);
    assert.equal(t.consecutive_failures, 1);

    // Any other answer ends the load: a later one starts its grace afresh.
    observe(s, probe(false), ctx);
    assert.equal(s.loading_since, null);
    observe(s, busy(NOW + 4000 * S, true), ctx);
    assert.equal(s.consecutive_failures, 0);
    assert.equal(s.loading_since, NOW + 4000 * S);
  });

  test('drops action timestamps older than an hour', () => {
    const s = emptyRouteState();
    s.actions = [NOW - 2 * 3_600_000, NOW - 60_000];
    observe(s, probe(true), ctx);
    assert.deepEqual(s.actions, [NOW - 60_000]);
  });
});

describe('watchdog state file', () => {
  test('round-trips, and starts fresh (saying why) when missing or corrupt', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hr-wd-state-'));
    try {
      const path = join(dir, 'sub', 'state.json');
      assert.equal(loadState(path).status, 'missing');
      const state = { version: 1 as const, updated_at: NOW, routes: { a: { ...emptyRouteState(), consecutive_failures: 4, actions: [NOW], paged: true, loading_since: NOW - 60_000 } } };
      saveState(path, state);
      const back = loadState(path);
      assert.equal(back.status, 'loaded');
      assert.deepEqual(back.state, state);

      writeFileSync(path, '{"version": 1, "routes": {"a": ');
      const corrupt = loadState(path);
      assert.equal(corrupt.status, 'corrupt');
      assert.deepEqual(corrupt.state.routes, {});
      assert.match(corrupt.status === 'corrupt' ? corrupt.detail : '', /not JSON/);

      writeFileSync(path, JSON.stringify({ version: 1, routes: { a: { consecutive_failures: 'lots', actions: [1, 'x'], paged: 'yes' } } }));
      const odd = loadState(path);
      assert.equal(odd.status, 'loaded');
      assert.deepEqual(odd.state.routes.a, { ...emptyRouteState(), actions: [1] });
      assert.deepEqual(readdirSync(join(dir, 'sub')), ['state.json'], 'no temp file left behind');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
