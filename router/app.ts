// The HTTP server: the lean data plane for /v1/* and the probes, Express for the admin API,
// metrics, stats and everything else, with one error middleware in the OpenAI envelope.
import { createServer, type Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { asRouterError, RouterError } from './errors.ts';
import { adminRouter, upstreamView, type RecoveryControl } from './admin/routes.ts';
import { serveDataPlane } from './http/data-plane.ts';
import { admitAtEdge } from './http/edge.ts';
import { envelopeFor, renderError } from './http/envelope.ts';
import { applyConnectionLimits, checkingIntervalMs } from './http/connections.ts';
import { publicUpstreamView, statsDetail } from './admin/stats-view.ts';
import { requestLogApi } from './admin/request-log-api.ts';
import { HostTelemetry } from './obs/host.ts';
import type { RouterService } from './service.ts';
import { uiRouter } from './ui/routes.ts';
import { UiSessions } from './keys/sessions.ts';

export interface AppOptions {
  recovery?: RecoveryControl;
  host?: HostTelemetry;
  /** More endpoints under a path prefix (the demo's /demo controls). */
  extra?: { path: string; router: express.Router };
  /** Web UI sign-in sessions, shared by the UI, the admin API and the data plane (its playground). */
  sessions?: UiSessions;
}

export function createExpressApp(svc: RouterService, opts: AppOptions = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const sessions = opts.sessions ?? new UiSessions();
  app.use('/admin/api', requestLogApi(svc, sessions));
  app.use('/admin', adminRouter(svc, opts.recovery, sessions));
  if (opts.extra) app.use(opts.extra.path, opts.extra.router);
  app.get(/^\/ui$/, (_req, res) => res.redirect(308, '/ui/'));
  app.use('/ui', uiRouter(svc, sessions));
  app.get('/favicon.ico', (_req, res) => res.redirect(308, '/ui/app/favicon.svg'));

  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', svc.metrics.registry.contentType);
    res.end(await svc.metrics.registry.metrics());
  });

  app.get('/stats', async (req, res) => {
    // Without the admin token: no GPU URLs and no upstream error text (which can echo prompts).
    const full = statsDetail(req.headers.authorization, svc.adminToken);
    const metrics = (await svc.metrics.registry.getMetricsAsJSON()).filter((m) => m.name.startsWith('homelab_router_') && !m.name.startsWith('homelab_router_process_') && !m.name.startsWith('homelab_router_nodejs_'));
    res.json({
      uptime_s: Math.round((Date.now() - svc.startedAt) / 1000),
      policy_hash: svc.policy.hash,
      upstreams: full ? svc.states.all().map(upstreamView) : svc.states.all().map(publicUpstreamView),
      host: opts.host?.sample ?? null,
      metrics: Object.fromEntries(metrics.map((m) => [m.name, { type: m.type, help: m.help, values: m.values }])),
    });
  });

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new RouterError('not_found', `No endpoint ${req.method} ${req.path}. See GET /v1/models, POST /v1/chat/completions, POST /v1/route/explain, /healthz, /readyz, /metrics, /stats, /admin/*, /ui/.`));
  });

  // Express 5 routes rejected promises here too, so handlers just throw.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const parserError = bodyParserError(err);
    const e = asRouterError(parserError ?? err);
    if (!(err instanceof RouterError) && !parserError) svc.logs.service.error({ err, path: req.path }, 'unexpected error');
    if (res.headersSent) return void res.destroy();
    if (e.retryAfterS !== undefined) res.setHeader('retry-after', String(e.retryAfterS));
    const rendered = renderError(envelopeFor(req.originalUrl), e);
    res.status(rendered.status).type('application/json').send(rendered.body);
  });
  return app;
}

/** express.json's failures (they carry `type`) as the router's own errors; null for anything else. */
function bodyParserError(err: unknown): RouterError | null {
  const type = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
  switch (type) {
    case 'entity.parse.failed':
      return new RouterError('invalid_request', `The request body is not valid JSON: ${(err as Error).message}`);
    case 'entity.too.large':
      return new RouterError('payload_too_large', `The request body is larger than this endpoint accepts (${(err as { limit?: number }).limit ?? '?'} bytes).`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new RouterError('unsupported_media_type', `${(err as Error).message}: send the body uncompressed, as UTF-8 JSON.`);
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new RouterError('invalid_request', `The request body could not be read: ${(err as Error).message}`);
    default:
      return null;
  }
}

export function createRouterServer(svc: RouterService, opts: AppOptions = {}): Server {
  const sessions = opts.sessions ?? new UiSessions();
  const app = createExpressApp(svc, { ...opts, sessions });
  const limits = svc.policy.doc.server;
  // Refused at the edge: counted like any request answered without a route.
  const refused = (err: RouterError) => svc.metrics.requests.inc({ route: 'none', bucket: 'none', reason: err.code, code: String(err.status) });
  const server = createServer({ connectionsCheckingInterval: checkingIntervalMs(limits) }, (req, res) => {
    const path = admitAtEdge(req, res, svc.policy, refused);
    if (path !== null && !serveDataPlane(req, res, svc, path, sessions)) app(req, res);
  });
  applyConnectionLimits(server, limits, (max, dropped) => svc.logs.service.warn({ max_connections: max, dropped }, `server.max_connections (${max}) reached: new connections are closed as they arrive`));
  return server;
}

export interface ListenAddress {
  host: string;
  port: number;
  /** The address actually bound (what the host name resolved to), once listening. */
  address?: string;
}

/** HOST:PORT as the policy's server.listen and `serve --listen` spell it ("[::1]:4000" for IPv6). */
export function parseListen(listenAddr: string): ListenAddress {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):([0-9]{1,5})$/.exec(listenAddr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`"${listenAddr}" is not HOST:PORT (for example 127.0.0.1:4000, or [::1]:4000 for IPv6; port 0 to 65535)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** "host:port", with brackets around an IPv6 host. */
export function formatListen({ host, port }: ListenAddress): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Binds `server`; resolves with the port taken (for port 0), rejects with an operator-readable reason. */
export function listen(server: Server, at: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${formatListen(at)}: ${listenFailure(err)}`));
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve({ host: at.host, port: typeof addr === 'object' && addr ? addr.port : at.port, address: typeof addr === 'object' && addr ? addr.address : at.host });
    });
  });
}

function listenFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'the address is already in use (another homelab-router, or another service on that port?)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)';
    case 'EADDRNOTAVAIL':
      return 'no network interface on this machine has that address';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    default:
      return err.message;
  }
}

/** Only this machine can reach it: 127.0.0.0/8, ::1, localhost (and 127.x written as IPv6). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^(::ffff:)?127\./i.test(host);
}
