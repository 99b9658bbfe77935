// A whole lab on loopback for integration tests: one simulated upstream per route of the
// shipped policy (same buckets, fallbacks and aliases; URLs pointed at the simulators) and
// the real router server on port 0. Everything is closed by `close()`.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { createRouterServer, type AppOptions } from '../../router/app.ts';
import { startSimUpstream, type SimOptions, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import { parsePolicyText } from '../../router/policy/load.ts';
import { RouterService } from '../../router/service.ts';

export const SHIPPED_POLICY = new URL('../../routing_policy.yaml', import.meta.url);

const RUNTIME: Record<string, SimOptions['runtime']> = { vllm: 'vllm', lmstudio: 'lmstudio', llamacpp: 'llamacpp', ollama: 'ollama' };

export interface Lab {
  url: string;
  base: string;
  sims: Record<string, SimUpstream>;
  svc: RouterService;
  server: Server;
  logDir: string;
  dataDir: string;
  policyYaml: string;
  /** Set with `policyFile: true`: the file the router reloads from (holds policyYaml at start). */
  policyPath: string | undefined;
  close(): Promise<void>;
}

export interface LabOptions {
  /** Deep-merged over each route of the shipped policy (e.g. smaller timeouts). */
  routeOverrides?: Record<string, Record<string, unknown>>;
  /** Per-route simulator options. */
  sim?: Record<string, Partial<SimOptions>>;
  /** Applied to the parsed policy document before it is compiled. */
  edit?: (doc: any) => void;
  adminToken?: string;
  /** Options for the HTTP app; a function gets the service first (host telemetry needs its registry). */
  app?: AppOptions | ((svc: RouterService) => AppOptions);
  logDir?: string;
  /** $HOMELAB_ROUTER_DATA_DIR of the router. Given: keys.db and the request log there; not given: keys.db in a fresh temp dir and no request log. */
  dataDir?: string;
  /** Write the policy to a file in a temp folder and load it from there, so reloads can be tested. */
  policyFile?: boolean;
  /** Default process metrics on the registry (off by default: they only add noise to most tests). */
  processMetrics?: boolean;
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const doc = loadYaml(readFileSync(SHIPPED_POLICY, 'utf8')) as any;
  const sims: Record<string, SimUpstream> = {};
  for (const [name, route] of Object.entries<any>(doc.routes)) {
    sims[name] = await startSimUpstream({ model: route.model, runtime: RUNTIME[route.runtime] ?? 'vllm', slots: route.slots, ...opts.sim?.[name] });
    route.url = sims[name]!.url;
    Object.assign(route, opts.routeOverrides?.[name] ?? {});
  }
  doc.server.listen = '127.0.0.1:0';
  opts.edit?.(doc);
  const policyYaml = dumpYaml(doc);
  const logDir = opts.logDir ?? mkdtempSync(join(tmpdir(), 'hr-logs-'));
  let policyPath: string | undefined;
  if (opts.policyFile) {
    policyPath = join(mkdtempSync(join(tmpdir(), 'hr-policy-')), 'routing_policy.yaml');
    writeFileSync(policyPath, policyYaml);
  }
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'hr-data-'));
  let svc: RouterService;
  try {
    svc = new RouterService({ policy: parsePolicyText(policyYaml, policyPath ?? 'test-policy'), policyPath, logDir, dataDir, requestLog: opts.dataDir !== undefined, adminToken: opts.adminToken, quiet: true, processMetrics: opts.processMetrics ?? false });
    await svc.start();
  } catch (err) {
    // A lab that cannot start leaves nothing open behind it (a test file would never exit).
    await Promise.all(Object.values(sims).map((s) => s.close()));
    throw err;
  }
  const server = createRouterServer(svc, typeof opts.app === 'function' ? opts.app(svc) : opts.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${base}/v1`,
    base,
    sims,
    svc,
    server,
    logDir,
    dataDir,
    policyYaml,
    policyPath,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await svc.close();
      await Promise.all(Object.values(sims).map((s) => s.close()));
    },
  };
}

/** In-flight and queued counts of every route: all zero when nothing leaked. */
export function leftovers(lab: Lab): Record<string, { inFlight: number; queued: number }> {
  const out: Record<string, { inFlight: number; queued: number }> = {};
  for (const r of lab.svc.states.all()) if (r.admission.inFlight !== 0 || r.admission.queued !== 0) out[r.name] = { inFlight: r.admission.inFlight, queued: r.admission.queued };
  return out;
}

export function readJsonLines(path: string): any[] {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON: callers assert on text */
  }
  return { status: res.status, headers: res.headers, json, text };
}
