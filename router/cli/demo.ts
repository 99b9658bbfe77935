// `homelab-router demo` (npm run demo): the reference lab on one machine. Four simulated GPU
// upstreams with the shipped policy's slot limits and plausible latency and token pacing, the
// real router in front of them, and a walkthrough of what to try with curl.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { startSimUpstream, type SimOptions } from '../demo/sim-upstream.ts';
import { packagePath } from '../paths.ts';
import { serve } from './serve.ts';

const SHIPPED = packagePath('routing_policy.yaml');

// Time to first byte and per-chunk pacing of each machine, roughly as the lab measures them.
const PACE: Record<string, Partial<SimOptions>> = {
  'ubuntu-4090': { latencyMs: 120, tokenIntervalMs: 15 },
  'ubuntu-6000': { latencyMs: 250, tokenIntervalMs: 30 },
  spark: { latencyMs: 400, tokenIntervalMs: 45 },
  'win-5090': { latencyMs: 200, tokenIntervalMs: 25, runtime: 'lmstudio' },
};

export async function demo(opts: { port: number }): Promise<number> {
  const doc = loadYaml(readFileSync(SHIPPED, 'utf8')) as any;
  for (const [name, route] of Object.entries<any>(doc.routes)) {
    const sim = await startSimUpstream({ model: route.model, slots: route.slots, chunks: 24, ...PACE[name] });
    route.url = sim.url;
    // The simulators run here, not over SSH: nothing for the watchdog to restart.
    route.recovery = { managed: false };
  }
  doc.hosts = {};
  doc.server.listen = `127.0.0.1:${opts.port}`;
  const dir = mkdtempSync(join(tmpdir(), 'homelab-router-demo-'));
  const policyPath = join(dir, 'routing_policy.yaml');
  writeFileSync(policyPath, dumpYaml(doc));
  process.env.HOMELAB_ROUTER_ADMIN_TOKEN ||= randomBytes(16).toString('hex');
  process.env.HOMELAB_ROUTER_LOG_DIR ||= join(dir, 'logs');
  process.env.HOMELAB_ROUTER_DATA_DIR ||= join(dir, 'data');
  return serve({ policyPath, quiet: true, banner: (base) => walkthrough(base, policyPath) });
}

function walkthrough(base: string, policyPath: string): string {
  const token = process.env.HOMELAB_ROUTER_ADMIN_TOKEN!;
  const chat = (body: string, extra = '') => `curl -si ${base}/v1/chat/completions -H 'content-type: application/json' ${extra}-d '${body}'`;
  return `
homelab-router demo on ${base}: four simulated GPUs behind one endpoint.
  policy   ${policyPath}  (edit it: the router reloads on save)
  logs     ${process.env.HOMELAB_ROUTER_LOG_DIR}
  admin    export HOMELAB_ROUTER_ADMIN_TOKEN=${token}

Try (each answer's x-homelab-* headers say where it went and why):
  # auto routing: coding → ubuntu-6000
  ${chat('{"model":"homelab/auto","messages":[{"role":"user","content":"Refactor this FastAPI handler and add pytest tests"}]}')}
  # an image always goes to a vision route
  ${chat('{"model":"homelab/auto","messages":[{"role":"user","content":[{"type":"text","text":"what is in this picture?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}')}
  # pin a model (strict: never spills)      /  override the route with a header
  ${chat('{"model":"homelab/chat","messages":[{"role":"user","content":"hello"}]}')}
  ${chat('{"model":"homelab/auto","messages":[{"role":"user","content":"hello"}]}', "-H 'x-homelab-route: spark' ")}
  # streaming
  curl -sN ${base}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"homelab/auto","stream":true,"messages":[{"role":"user","content":"tell me a joke"}]}'
  # why would this go where it goes? (calls nothing)
  curl -s ${base}/v1/route/explain -H 'content-type: application/json' -d '{"model":"homelab/auto","messages":[{"role":"user","content":"Compare event sourcing and CRUD: trade-offs?"}]}'
  # drain ubuntu-6000, then send the coding prompt again: it spills to win-5090
  curl -s -X POST ${base}/admin/drain/ubuntu-6000 -H "authorization: Bearer $HOMELAB_ROUTER_ADMIN_TOKEN"
  npx homelab-router upstreams
  # undrain, then spill: 12 coding requests at once against 4 slots + 4 queue places on ubuntu-6000
  curl -s -X DELETE ${base}/admin/drain/ubuntu-6000 -H "authorization: Bearer $HOMELAB_ROUTER_ADMIN_TOKEN"
  for i in $(seq 12); do ${chat('{"model":"homelab/auto","messages":[{"role":"user","content":"Refactor this python function"}]}').replace('-si', '-s -o /dev/null -w "%{http_code} %header{x-homelab-route}\\n"')} & done; wait
  curl -s ${base}/metrics | grep homelab_router_requests_total
`;
}
