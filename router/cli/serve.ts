// `homelab-router serve`: the production process. Loads the policy, binds the HTTP server,
// then starts health checks, the in-process watchdog and the policy file watcher; drains on
// SIGTERM.
import { createRouterServer, formatListen, isLoopback, listen, parseListen, type AppOptions, type ListenAddress } from '../app.ts';
import { loadPolicyFile, PolicyError } from '../policy/load.ts';
import { watchPolicyFile } from '../policy/watch.ts';
import { logDir } from '../obs/logs.ts';
import { HostTelemetry } from '../obs/host.ts';
import { dataDir, RUNNING_BUILT } from '../paths.ts';
import { RouterService } from '../service.ts';
import { inProcessWatchdog } from './watchdog-wiring.ts';
import type { runRemote } from '../recovery/ssh-exec.ts';

// How long SIGTERM waits for in-flight requests before closing them.
const DRAIN_MS = 30_000;

export interface ServeOptions {
  policyPath: string;
  listen?: string | undefined;
  /** Printed after the listen line (the demo's walkthrough). */
  banner?: (base: string) => string;
  quiet?: boolean;
  /** More endpoints (the demo's /demo controls). */
  extra?: AppOptions['extra'];
  /** Runs recovery commands instead of SSH (the demo acts on its simulators). */
  exec?: typeof runRemote;
}

/** What an operator must hear at start about who can reach the router. Pure. */
/** Start-up warnings for a router reachable from a network; `bound` is the address actually bound. */
export function exposureWarnings(host: string, authMode: 'open' | 'keys', bound = host): string[] {
  if (isLoopback(bound)) return [];
  const out = [`WARNING: homelab-router is listening on ${host}${bound !== host ? ` (${bound})` : ''}, not loopback. The admin API and every GPU behind it are reachable from that network; put it behind a firewall or bind 127.0.0.1.`];
  if (authMode === 'open') out.push(`WARNING: auth.mode is open: any client that reaches ${host} can use every GPU without a key. Set auth: {mode: keys} in the policy and give each application a key (homelab-router keys create NAME).`);
  return out;
}

export async function serve(opts: ServeOptions): Promise<number> {
  let policy;
  try {
    policy = loadPolicyFile(opts.policyPath);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    console.error(err.message);
    return 1;
  }
  let listenAt: ListenAddress;
  try {
    listenAt = parseListen(opts.listen ?? policy.doc.server.listen);
  } catch (err) {
    console.error(`${opts.listen !== undefined ? '--listen' : `${opts.policyPath}: server.listen`} ${(err as Error).message}`);
    return 2;
  }
  const token = process.env.HOMELAB_ROUTER_ADMIN_TOKEN || undefined;
  let svc: RouterService;
  try {
    svc = new RouterService({ policy, policyPath: opts.policyPath, logDir: logDir(), dataDir: dataDir(), adminToken: token, quiet: opts.quiet ?? false });
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  }
  const log = svc.logs.service;
  // With a cluster block: join the replicas (a dead Redis is not waited for: local share).
  await svc.start();
  const host = new HostTelemetry(svc.metrics.registry);
  const watchdog = inProcessWatchdog(svc, opts.exec);
  const server = createRouterServer(svc, { recovery: watchdog, host, ...(opts.extra ? { extra: opts.extra } : {}) });

  // Bind first: a router that cannot take its address exits 1 (systemd restarts it) instead of
  // probing, watching and running the watchdog without serving anyone.
  let addr;
  try {
    addr = await listen(server, listenAt);
  } catch (err) {
    await svc.close();
    console.error((err as Error).message);
    return 1;
  }
  host.start();
  svc.health.start();
  watchdog.start();
  const watcher = watchPolicyFile(opts.policyPath, () => {
    try {
      svc.reloadFromFile('file');
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      log.error({ errors: err.errors }, 'policy file changed but is invalid; the running policy is unchanged');
    }
  });

  const base = `http://${formatListen(addr)}`;
  log.info({ listen: base, policy: opts.policyPath, hash: policy.hash, routes: policy.routeNames, build: RUNNING_BUILT ? 'dist' : 'source' }, 'homelab-router listening');
  // Judged on the address bound, not the name configured: a name can resolve anywhere.
  for (const warning of exposureWarnings(addr.host, svc.policy.doc.auth.mode, addr.address ?? addr.host)) {
    console.error(warning);
    log.warn({ listen: base }, warning);
  }
  if (!token) log.warn('HOMELAB_ROUTER_ADMIN_TOKEN is not set: every /admin/* call answers 403 until it is.');
  if (opts.banner) console.log(opts.banner(base));

  const shutdown = (signal: string) => {
    log.info({ signal, in_flight: svc.states.all().reduce((n, r) => n + r.admission.inFlight, 0) }, 'shutting down: no new connections, draining requests');
    server.close();
    server.closeIdleConnections();
    svc.requestLog?.endFeeds();
    const force = setTimeout(() => server.closeAllConnections(), DRAIN_MS).unref();
    server.once('close', () => {
      clearTimeout(force);
      host.stop();
      void watchdog.stop();
      void watcher.close().then(() => svc.close()).then(() => process.exit(0));
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return -1;
}
