// The in-process watchdog: the same logic `watchdog --once` runs, every watchdog.interval_s
// once started.
import { isAbsolute, join } from 'node:path';
import { logDir } from '../obs/logs.ts';
import { Watchdog } from '../recovery/watchdog.ts';
import { runRemote } from '../recovery/ssh-exec.ts';
import type { RouterService } from '../service.ts';
import { probeRoute } from '../upstream/probe.ts';

/** `exec` runs recovery commands: over SSH, or the demo's stand-in. */
export function inProcessWatchdog(svc: RouterService, exec: typeof runRemote = runRemote): Watchdog {
  const cfg = svc.policy.doc.watchdog;
  const statePath = isAbsolute(cfg.state_file) ? cfg.state_file : join(logDir(), cfg.state_file);
  const watchdog = new Watchdog({
    policy: () => svc.policy,
    probe: (route) => probeRoute(svc.policy.route(route), svc.policy.doc.health.timeout_ms),
    exec,
    log: svc.logs.recovery,
    statePath,
    onAction: (route, action, result) => {
      svc.metrics.recoveries.inc({ route, action, result });
      // After a restart or CUDA recovery: probe at once; passing probes (then slow start) bring it back.
      if (action !== 'page' && result !== 'skipped') void svc.health.probeAll();
    },
    // During a recovery the route takes no traffic (reliability anchor S26).
    onRecoveryStart: (route, action, host) => svc.states.get(route)?.beginRecovery(`recovery.${action} running on host ${host}`),
    // With replicas, only the one holding the cluster's lock restarts GPU servers.
    ...(svc.cluster ? { blocked: () => svc.cluster!.watchdogBlocked() } : {}),
  });
  svc.onCudaFault((route) => watchdog.noteCudaFault(route));
  return watchdog;
}
