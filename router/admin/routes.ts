// /admin/*: the operator's controls (SPEC §7). Mutations are POST/DELETE only; each one is
// written to the service log without secrets.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { RouterError } from '../errors.ts';
import { PolicyError } from '../policy/load.ts';
import type { RouterService } from '../service.ts';
import type { RouteRuntime } from '../upstream/route-state.ts';
import { PROBE_HISTORY_MAX, PROBE_HISTORY_MAX_AGE_MS } from '../upstream/probe-history.ts';
import { requireAdminToken } from './auth.ts';
import { keysRouter } from './keys.ts';
import type { UiSessions } from '../keys/sessions.ts';

export interface RecoveryControl {
  recoverCuda(route: string, trigger: 'admin'): Promise<unknown>;
}

export function upstreamView(r: RouteRuntime) {
  return {
    route: r.name,
    url: r.config.url,
    model: r.config.model,
    runtime: r.config.runtime,
    healthy: r.health.healthy,
    drained: r.drained,
    in_flight: r.admission.inFlight,
    queued: r.admission.queued,
    slots: r.config.slots,
    queue: r.config.queue,
    saturated: r.admission.saturated,
    // Skipped as busy until then: the upstream answered 429 (or a probe found it full or still
    // loading its model). Null when it is not.
    busy_until: r.health.busyUntil > Date.now() ? new Date(r.health.busyUntil).toISOString() : null,
    consecutive_failures: r.health.consecutiveFailures,
    last_error: r.health.lastError,
    last_probe_at: r.health.lastProbeAt === null ? null : new Date(r.health.lastProbeAt).toISOString(),
    latency_ms: r.health.latencyMs,
  };
}

/** GET /admin/api/upstreams/:route/probes: the route's recent probes, oldest first (no error text). */
export function probeHistoryView(r: RouteRuntime, intervalS: number) {
  return {
    route: r.name,
    interval_s: intervalS,
    max_probes: PROBE_HISTORY_MAX,
    max_age_s: PROBE_HISTORY_MAX_AGE_MS / 1000,
    probes: r.probeHistory().map((p) => ({ at: new Date(p.at).toISOString(), ok: p.ok, latency_ms: p.latencyMs, status: p.status, error: p.error, busy: p.busy, loading: p.loading, cuda: p.cuda })),
  };
}

export function adminRouter(svc: RouterService, recovery: RecoveryControl | undefined, sessions?: UiSessions): Router {
  const router = express.Router();
  router.use(requireAdminToken(svc.adminToken, { isAdminKey: (bearer) => svc.keys.isAdminKey(bearer), ...(sessions ? { sessions } : {}) }));
  router.use('/keys', keysRouter(svc.keys, (req, action, detail) => audit(req, action, detail)));
  const routeOf = (req: Request): RouteRuntime => {
    const name = String(req.params.route);
    const rt = svc.states.get(name);
    if (!rt) throw new RouterError('not_found', `No route named "${name}" (routes: ${svc.policy.routeNames.join(', ')}).`);
    return rt;
  };
  const audit = (req: Request, action: string, detail: Record<string, unknown>) => svc.logs.service.info({ admin: action, remote: req.socket.remoteAddress, ...detail }, `admin ${action}`);

  router.get('/upstreams', (_req, res) => {
    const cluster = svc.cluster;
    if (!cluster) return void res.json({ upstreams: svc.states.all().map(upstreamView) });
    // With replicas: in_flight is this replica's, lab_in_flight all of them together (Redis's
    // count, null while it is unreachable), local_share what this replica admits without Redis.
    res.json({ cluster: cluster.status, upstreams: svc.states.all().map((r) => ({ ...upstreamView(r), ...cluster.routeView(r.name) })) });
  });
  router.get('/policy', (_req, res) => {
    res.json({ hash: svc.policy.hash, path: svc.store.path ?? null, loaded_at: new Date(svc.store.loadedAt).toISOString(), policy: svc.policy.doc });
  });

  router.get('/api/upstreams/:route/probes', (req, res) => {
    res.json(probeHistoryView(routeOf(req), svc.policy.doc.health.interval_s));
  });

  router.get('/api/reloads', (_req, res) => {
    res.json({ reloads: [...svc.reloadHistory].reverse() });
  });

  const setDrain = (drained: boolean) => (req: Request, res: Response) => {
    const rt = routeOf(req);
    rt.setDrained(drained);
    audit(req, drained ? 'drain' : 'undrain', { route: rt.name });
    res.json({ route: rt.name, drained, in_flight: rt.admission.inFlight, queued: rt.admission.queued });
  };
  router.post('/drain/:route', setDrain(true));
  router.delete('/drain/:route', setDrain(false));
  router.post('/undrain/:route', setDrain(false));

  router.post('/reload-config', (req, res) => {
    try {
      const r = svc.reloadFromFile();
      audit(req, 'reload', { result: r.result, hash: r.hash, changed: r.changed });
      res.json({ hash: r.hash, previous_hash: r.previousHash, result: r.result, changed: r.changed });
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      audit(req, 'reload', { result: 'invalid', errors: err.errors });
      const e = new RouterError('invalid_request', `The policy file is invalid; the running policy is unchanged. ${err.errors.join('; ')}`);
      res.status(400).json({ ...e.toBody(), errors: err.errors, hash: svc.policy.hash });
    }
  });

  router.post('/recover-cuda', express.json({ limit: '16kb' }), async (req, res) => {
    const route = (req.body as { route?: unknown } | undefined)?.route;
    if (typeof route !== 'string' || route === '') throw new RouterError('invalid_request', 'Send a JSON body {"route": "<route name>"}.', { param: 'route' });
    if (!svc.states.get(route)) throw new RouterError('not_found', `No route named "${route}".`);
    if (!recovery) throw new RouterError('internal_error', 'Recovery is not available in this process.');
    audit(req, 'recover-cuda', { route });
    res.json(await recovery.recoverCuda(route, 'admin'));
  });

  // GET on a mutation does nothing and says so (Envoy's admin rule).
  router.all(['/drain/:route', '/undrain/:route', '/reload-config', '/recover-cuda'], (req: Request, _res: Response, next: NextFunction) => {
    next(new RouterError('method_not_allowed', `${req.method} is not allowed here; this endpoint changes state and takes POST${req.path.startsWith('/drain') ? ' or DELETE' : ''}.`));
  });
  return router;
}
