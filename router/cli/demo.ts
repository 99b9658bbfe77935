// `homelab-router demo` (npm run demo): the reference lab on one machine. Four simulated GPU
// upstreams with the shipped policy's slot limits and plausible latency and token pacing, the
// real router in front of them, /demo controls to break and mend a simulated GPU, and a
// walkthrough of what to try with curl. Its temp directory (policy, logs, watchdog state) is
// removed when it exits.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { DemoLab, demoRouter } from '../demo/control.ts';
import { startSimUpstream, type SimOptions, type SimUpstream } from '../demo/sim-upstream.ts';
import { packagePath } from '../paths.ts';
import { serve } from './serve.ts';

const SHIPPED = packagePath('routing_policy.yaml');

// Time to first byte and per-chunk pacing of each machine, roughly as the lab measures them.
const PACE: Record<string, Partial<SimOptions>> = {
  'ubuntu-4090': { latencyMs: 120, tokenIntervalMs: 15 },
  'ubuntu-6000': { latencyMs: 250, tokenIntervalMs: 30 },
  spark: { latencyMs: 400, tokenIntervalMs: 45 },
  'win-5090': { latencyMs: 200, tokenIntervalMs: 25 },
};

const RUNTIMES = new Set(['vllm', 'lmstudio', 'llamacpp', 'ollama']);

/** The shipped policy pointed at the simulators, with recovery commands the demo itself runs and short intervals so reactions show within seconds. */
export function demoPolicy(shipped: any, sims: Record<string, SimUpstream>, port: number, dir: string): any {
  const doc = structuredClone(shipped);
  doc.hosts = {};
  for (const [name, route] of Object.entries<any>(doc.routes)) {
    route.url = sims[name]!.url;
    if (route.recovery?.managed === false) continue; // spark: the operator is paged, as in the real lab
    doc.hosts[name] = { address: '127.0.0.1', port: 22, user: 'demo' };
    route.recovery = { host: name, restart: `demo-restart ${name}`, cuda: `demo-reset-gpu ${name}` };
  }
  doc.server.listen = `127.0.0.1:${port}`;
  doc.health = { ...doc.health, interval_s: 2 };
  doc.watchdog = { ...doc.watchdog, interval_s: 3, restart_after_failures: 2, cooldown_s: 5, max_restarts_per_hour: 30, state_file: join(dir, 'watchdog-state.json') };
  return doc;
}

export async function demo(opts: { port: number }): Promise<number> {
  const shipped = loadYaml(readFileSync(SHIPPED, 'utf8')) as any;
  const dir = mkdtempSync(join(tmpdir(), 'homelab-router-demo-'));
  // However the demo ends (Ctrl-C, SIGTERM, a port it cannot take), nothing is left in /tmp.
  const cleanUp = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', cleanUp);
  const sims: Record<string, SimUpstream> = {};
  const closeSims = () => Promise.all(Object.values(sims).map((s) => s.close()));
  try {
    for (const [name, route] of Object.entries<any>(shipped.routes)) {
      sims[name] = await startSimUpstream({
        model: route.model,
        runtime: RUNTIMES.has(route.runtime) ? route.runtime : 'vllm',
        slots: route.slots,
        contextTokens: route.context_tokens,
        vision: route.vision === true,
        chunks: 24,
        ...PACE[name],
      });
    }
    const policyPath = join(dir, 'routing_policy.yaml');
    writeFileSync(policyPath, dumpYaml(demoPolicy(shipped, sims, opts.port, dir)));
    process.env.HOMELAB_ROUTER_ADMIN_TOKEN ||= randomBytes(16).toString('hex');
    process.env.HOMELAB_ROUTER_LOG_DIR ||= join(dir, 'logs');
    process.env.HOMELAB_ROUTER_DATA_DIR ||= join(dir, 'data');
    const lab = new DemoLab(sims);
    const extra = { path: '/demo', router: demoRouter(lab, process.env.HOMELAB_ROUTER_ADMIN_TOKEN) };
    const code = await serve({ policyPath, quiet: true, extra, exec: lab.exec, banner: (base) => walkthrough(base, policyPath) });
    if (code !== -1) {
      // serve could not start (the port is taken): stop the simulators so the process exits.
      await closeSims();
      cleanUp();
    }
    return code;
  } catch (err) {
    await closeSims();
    cleanUp();
    throw err;
  }
}

const CAMERA_SCHEMA = '{"type":"object","properties":{"person":{"type":"boolean"},"summary":{"type":"string"}},"required":["person","summary"],"additionalProperties":false}';

export function walkthrough(base: string, policyPath: string): string {
  const token = process.env.HOMELAB_ROUTER_ADMIN_TOKEN!;
  const auth = '-H "authorization: Bearer $HOMELAB_ROUTER_ADMIN_TOKEN"';
  const chat = (body: string, extra = '') => `curl -si ${base}/v1/chat/completions -H 'content-type: application/json' ${extra}-d '${body}'`;
  const brief = (body: string) => `curl -s -o /dev/null -w '%{http_code} %header{x-homelab-route} %header{x-homelab-reason}\\n' ${base}/v1/chat/completions -H 'content-type: application/json' -d '${body}'`;
  const coding = '{"model":"homelab/auto","messages":[{"role":"user","content":"Refactor this python function"}]}';
  const camera = `{"model":"homelab/auto","messages":[{"role":"user","content":"Frigate event: motion on the driveway camera. Is there a person?"}],"response_format":{"type":"json_schema","json_schema":{"name":"camera_event","schema":${CAMERA_SCHEMA}}}}`;
  return `
homelab-router demo on ${base}: four simulated GPUs behind one endpoint.
  policy   ${policyPath}  (edit it: the router reloads on save; removed when the demo exits)
  logs     ${process.env.HOMELAB_ROUTER_LOG_DIR}
  data     ${process.env.HOMELAB_ROUTER_DATA_DIR}
  admin    export HOMELAB_ROUTER_ADMIN_TOKEN=${token}
           export HOMELAB_ROUTER_URL=${base}

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
  # tools: agent work goes to ubuntu-6000, which answers with a tool call
  ${chat('{"model":"homelab/auto","messages":[{"role":"user","content":"what is the weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}')}
  # why would this go where it goes? (calls nothing)
  curl -s ${base}/v1/route/explain -H 'content-type: application/json' -d '{"model":"homelab/auto","messages":[{"role":"user","content":"Compare event sourcing and CRUD: trade-offs?"}]}'

  # drain ubuntu-6000: the coding prompt now spills to win-5090 (reason ubuntu-6000_drained); undrain
  npx homelab-router drain ubuntu-6000
  ${brief(coding)}
  npx homelab-router upstreams
  npx homelab-router undrain ubuntu-6000
  # spill: 12 coding requests at once against ubuntu-6000's 4 slots + 4 queue places
  for i in $(seq 12); do ${brief(coding)} & done; wait

  # failover: break ubuntu-6000 (connections refused); the request fails over to spark at once, the
  # health checks mark it down, and the watchdog restarts it within ~10 s (recovery-events.jsonl)
  curl -s -X POST ${base}/demo/break/ubuntu-6000 ${auth}
  ${brief(coding)}
  npx homelab-router upstreams
  # CUDA poisoning: ubuntu-6000 answers 500 "CUDA error"; requests fail over, the watchdog runs its
  # recovery.cuda command and the route comes back. spark is managed: false: break it and the
  # watchdog only pages the operator; mend it yourself
  curl -s -X POST ${base}/demo/cuda/ubuntu-6000 ${auth}
  ${brief(coding)}
  tail -f ${process.env.HOMELAB_ROUTER_LOG_DIR}/recovery-events.jsonl
  curl -s -X POST ${base}/demo/mend/ubuntu-6000 ${auth}

  # the camera path (fail-closed): JSON valid against the schema from ubuntu-4090 ...
  ${chat(camera)}
  # ... and when ubuntu-4090 ignores the schema, one retry on spark (reason escalated_invalid_json);
  # when spark does too, a synthetic {"escalate_to_spark":true,...} with x-homelab-synthetic: 1
  curl -s -X POST ${base}/demo/bad-json/ubuntu-4090 ${auth}
  ${chat(camera)}
  curl -s -X POST ${base}/demo/bad-json/ubuntu-4090 ${auth}; curl -s -X POST ${base}/demo/bad-json/spark ${auth}
  ${chat(camera)}

  curl -s ${base}/metrics | grep homelab_router_requests_total
`;
}
