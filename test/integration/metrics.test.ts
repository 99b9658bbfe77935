// Metrics and stats (SPEC §8): every named metric in /metrics with the right values after
// known traffic, /stats as JSON with host telemetry, the exposition linted by promtool, and a
// real Prometheus scraping a running router and answering queries about it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { HostTelemetry } from '../../router/obs/host.ts';
import { postJson, startLab, type Lab } from '../helpers/lab.ts';
import { freePort } from '../helpers/net.ts';
import { pollUntil } from '../helpers/poll.ts';
import { parseExposition, sampleSum, scrape } from '../helpers/prom.ts';

const TOKEN = 'metrics-test-token-0e4d';
const CODING = 'Refactor this FastAPI handler';
const CHAT = 'Tell me a joke about cats';
const ROUTES = ['spark', 'ubuntu-4090', 'ubuntu-6000', 'win-5090'];

const SPEC_METRICS = [
  'homelab_router_requests_total',
  'homelab_router_request_duration_seconds',
  'homelab_router_time_to_first_byte_seconds',
  'homelab_router_upstream_in_flight',
  'homelab_router_upstream_queued',
  'homelab_router_upstream_up',
  'homelab_router_upstream_drained',
  'homelab_router_fallbacks_total',
  'homelab_router_tokens_total',
  'homelab_router_policy_reloads_total',
  'homelab_router_recoveries_total',
];


const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
const PROMETHEUS = ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => existsSync(p));
const NO_PROMTOOL = PROMTOOL ? false : 'promtool is not installed (Debian: apt-get install prometheus)';
const NO_PROMETHEUS = PROMETHEUS ? false : 'prometheus is not installed (Debian: apt-get install prometheus)';

function chat(lab: Lab, content: string, opts: { model?: string } = {}) {
  return postJson(`${lab.url}/chat/completions`, { model: opts.model ?? 'homelab/auto', messages: [{ role: 'user', content }] });
}

/** 3 coding → ubuntu-6000 and 2 chat → win-5090, each checked as it lands. */
async function knownTraffic(lab: Lab): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await chat(lab, CODING);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-homelab-route'), 'ubuntu-6000');
  }
  for (let i = 0; i < 2; i++) {
    const r = await chat(lab, CHAT);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-homelab-route'), 'win-5090');
  }
}

function promtool(exposition: string): { code: number | null; problems: string[]; stderr: string } {
  const r = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 30_000 });
  const problems = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
  return { code: r.status, problems, stderr: r.stderr };
}

describe('/metrics', () => {
  test('every SPEC §8 metric and the default process metrics are exposed, with the right values after known traffic', async (t) => {
    const lab = await startLab({ adminToken: TOKEN, processMetrics: true });
    t.after(() => lab.close());

    const res = await fetch(`${lab.base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const idle = await res.text();
    for (const name of SPEC_METRICS) assert.match(idle, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is declared`);
    for (const name of ['homelab_router_process_cpu_user_seconds_total', 'homelab_router_process_resident_memory_bytes', 'homelab_router_nodejs_eventloop_lag_seconds', 'homelab_router_nodejs_heap_size_used_bytes']) {
      assert.match(idle, new RegExp(`^${name}(\\{| )`, 'm'), `default process metric ${name}`);
    }
    // Quiet routes show zeros rather than nothing, so alerts and rates work from the start.
    for (const route of ROUTES) {
      assert.equal(sampleSum(idle, 'homelab_router_upstream_up', { route }), 1, route);
      assert.equal(sampleSum(idle, 'homelab_router_upstream_in_flight', { route }), 0, route);
      assert.equal(sampleSum(idle, 'homelab_router_upstream_queued', { route }), 0, route);
      assert.equal(sampleSum(idle, 'homelab_router_upstream_drained', { route }), 0, route);
      assert.equal(sampleSum(idle, 'homelab_router_request_duration_seconds_count', { route }), 0, route);
      assert.equal(sampleSum(idle, 'homelab_router_tokens_total', { route, type: 'prompt' }), 0, route);
    }
    for (const result of ['ok', 'unchanged', 'invalid']) assert.equal(sampleSum(idle, 'homelab_router_policy_reloads_total', { result }), 0);
    assert.equal(sampleSum(idle, 'homelab_router_requests_total'), null, 'no request yet');

    await knownTraffic(lab);
    // One unknown model (answered by the router) and one auto request spilled by a drain.
    assert.equal((await chat(lab, CODING, { model: 'no-such-model' })).status, 404);
    lab.svc.states.get('ubuntu-6000')!.drained = true;
    assert.equal((await chat(lab, CODING)).headers.get('x-homelab-route'), 'win-5090');

    const text = await scrape(lab.base);
    const req = (labels: Record<string, string>) => sampleSum(text, 'homelab_router_requests_total', labels);
    assert.equal(req({ route: 'ubuntu-6000', bucket: 'coding', reason: 'bucket_match', code: '200' }), 3);
    assert.equal(req({ route: 'win-5090', bucket: 'general_chat', reason: 'bucket_match', code: '200' }), 2);
    assert.equal(req({ route: 'win-5090', bucket: 'coding', reason: 'ubuntu-6000_drained', code: '200' }), 1);
    assert.equal(req({ route: 'none', code: '404' }), 1);
    assert.equal(req({}), 7);
    assert.equal(sampleSum(text, 'homelab_router_fallbacks_total', { from: 'ubuntu-6000', to: 'win-5090', kind: 'drain' }), 1);
    assert.equal(sampleSum(text, 'homelab_router_fallbacks_total'), 1);
    assert.equal(sampleSum(text, 'homelab_router_request_duration_seconds_count', { route: 'ubuntu-6000' }), 3);
    assert.equal(sampleSum(text, 'homelab_router_request_duration_seconds_count', { route: 'win-5090' }), 3);
    assert.equal(sampleSum(text, 'homelab_router_request_duration_seconds_count', { route: 'spark' }), 0);
    assert.equal(sampleSum(text, 'homelab_router_time_to_first_byte_seconds_count', { route: 'ubuntu-6000' }), 3);
    // The +Inf bucket of a histogram holds every observation.
    assert.equal(sampleSum(text, 'homelab_router_request_duration_seconds_bucket', { route: 'ubuntu-6000', le: '+Inf' }), 3);
    // Exact token sums are checked in the next test.
    assert.ok((sampleSum(text, 'homelab_router_tokens_total', { route: 'ubuntu-6000', type: 'prompt' }) ?? 0) > 0);
    assert.ok((sampleSum(text, 'homelab_router_tokens_total', { route: 'ubuntu-6000', type: 'completion' }) ?? 0) > 0);
    assert.equal(sampleSum(text, 'homelab_router_tokens_total', { route: 'spark' }), 0);
    assert.equal(sampleSum(text, 'homelab_router_upstream_drained', { route: 'ubuntu-6000' }), 1);
    assert.equal(sampleSum(text, 'homelab_router_upstream_in_flight'), 0);

    // The gauges read live state: a failed probe round turns upstream_up to 0 once the
    // threshold is reached.
    lab.sims.spark!.setHealth('down');
    await lab.svc.health.probeAll();
    await lab.svc.health.probeAll();
    assert.equal(sampleSum(await scrape(lab.base), 'homelab_router_upstream_up', { route: 'spark' }), 0);
  });

  test('token counters equal the usage the upstream reported', async (t) => {
    const lab = await startLab();
    t.after(() => lab.close());
    const usage = { prompt: 0, completion: 0 };
    for (let i = 0; i < 3; i++) {
      const r = await chat(lab, CODING);
      assert.equal(r.status, 200);
      usage.prompt += r.json.usage.prompt_tokens;
      usage.completion += r.json.usage.completion_tokens;
    }
    const text = await scrape(lab.base);
    assert.equal(sampleSum(text, 'homelab_router_tokens_total', { route: 'ubuntu-6000', type: 'prompt' }), usage.prompt);
    assert.equal(sampleSum(text, 'homelab_router_tokens_total', { route: 'ubuntu-6000', type: 'completion' }), usage.completion);
  });

  test('promtool check metrics accepts the exposition', { skip: NO_PROMTOOL }, async (t) => {
    const lab = await startLab({ processMetrics: true, app: (svc) => ({ host: new HostTelemetry(svc.metrics.registry) }) });
    t.after(() => lab.close());
    await knownTraffic(lab);
    lab.svc.states.get('ubuntu-6000')!.drained = true;
    await chat(lab, CODING);

    // The router's own metrics: no problem at all.
    const own = (await scrape(lab.base)).split('\n').filter((l) => !/^(# (HELP|TYPE) )?homelab_router_(process|nodejs)_/.test(l)).join('\n');
    const strict = promtool(own);
    assert.deepEqual(strict.problems, []);
    assert.equal(strict.code, 0, strict.stderr);

    // The whole exposition, process metrics included.
    const full = promtool(await scrape(lab.base));
    assert.deepEqual(full.problems, []);
    assert.equal(full.code, 0, full.stderr);
  });
});

describe('/stats', () => {
  test('JSON with upstreams, the router metrics and host telemetry', async (t) => {
    let host: HostTelemetry | undefined;
    const lab = await startLab({ processMetrics: true, app: (svc) => ({ host: (host = new HostTelemetry(svc.metrics.registry)) }) });
    t.after(() => lab.close());
    await host!.refresh();
    await knownTraffic(lab);

    const res = await fetch(`${lab.base}/stats`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const stats = (await res.json()) as any;
    assert.equal(stats.policy_hash, lab.svc.policy.hash);
    assert.equal(typeof stats.uptime_s, 'number');
    assert.deepEqual(stats.upstreams.map((u: any) => u.route).sort(), ROUTES);
    for (const u of stats.upstreams) assert.deepEqual(Object.keys(u).sort(), ['busy_until', 'consecutive_failures', 'drained', 'healthy', 'in_flight', 'last_error', 'last_probe_at', 'latency_ms', 'model', 'queue', 'queued', 'route', 'runtime', 'saturated', 'slots', 'url']);

    const requests = stats.metrics.homelab_router_requests_total;
    assert.equal(requests.type, 'counter');
    const byRoute: Record<string, number> = {};
    for (const v of requests.values) byRoute[v.labels.route] = (byRoute[v.labels.route] ?? 0) + v.value;
    assert.deepEqual(byRoute, { 'ubuntu-6000': 3, 'win-5090': 2 });
    for (const name of SPEC_METRICS) assert.ok(name in stats.metrics, `${name} in /stats`);
    assert.ok(!Object.keys(stats.metrics).some((n) => n.startsWith('homelab_router_process_') || n.startsWith('homelab_router_nodejs_')), 'process metrics stay in /metrics');

    assert.match(stats.host.at, /^\d{4}-\d\d-\d\dT/);
    assert.equal(typeof stats.host.cpu_load_percent, 'number');
    assert.ok(stats.host.memory_total_bytes > 0);
    assert.ok(stats.host.memory_used_bytes > 0 && stats.host.memory_used_bytes <= stats.host.memory_total_bytes);
    assert.ok(Array.isArray(stats.host.gpus));
    for (const g of stats.host.gpus) assert.equal(typeof g.index, 'number');

    // The same sample as gauges.
    const text = await scrape(lab.base);
    assert.equal(sampleSum(text, 'homelab_router_host_memory_total_bytes'), stats.host.memory_total_bytes);
    assert.equal(sampleSum(text, 'homelab_router_host_cpu_load_percent'), stats.host.cpu_load_percent);
    assert.equal(parseExposition(text).filter((s) => s.name === 'homelab_router_host_gpu_utilization_percent').length, stats.host.gpus.filter((g: any) => g.utilization_percent !== null).length);
  });

  test('without host telemetry, host is null', async (t) => {
    const lab = await startLab();
    t.after(() => lab.close());
    const stats = (await (await fetch(`${lab.base}/stats`)).json()) as any;
    assert.equal(stats.host, null);
  });
});

describe('Prometheus end to end', () => {
  test('a real Prometheus scrapes the router and sums requests by route', { skip: NO_PROMETHEUS }, async (t) => {
    const lab = await startLab();
    t.after(() => lab.close());
    const dir = mkdtempSync(join(tmpdir(), 'hr-prometheus-'));
    const target = new URL(lab.base).host;
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: homelab-router',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'));

    const port = await freePort();
    const prom = spawn(PROMETHEUS!, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    prom.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    const exited = new Promise<void>((resolve) => prom.once('exit', () => resolve()));
    // Prometheus stops before its data folder goes.
    t.after(async () => {
      if (prom.exitCode === null && prom.signalCode === null) {
        prom.kill('SIGTERM');
        const force = setTimeout(() => prom.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(force);
      }
      rmSync(dir, { recursive: true, force: true });
    });
    const api = `http://127.0.0.1:${port}`;
    await pollUntil('Prometheus to be ready', async () => {
      if (prom.exitCode !== null) throw new Error(`prometheus exited with ${prom.exitCode}: ${log}`);
      const res = await fetch(`${api}/-/ready`).catch(() => null);
      await res?.body?.cancel();
      return res?.status === 200 ? true : undefined;
    }, { tries: 200 });

    await knownTraffic(lab);

    const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
      const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      assert.equal(body.status, 'success', JSON.stringify(body));
      return body.data.result;
    };
    const byRoute = await pollUntil('Prometheus to have scraped the traffic', async () => {
      const rows = await query('sum by (route) (homelab_router_requests_total)');
      const m = Object.fromEntries(rows.map((r) => [r.metric.route, r.value[1]]));
      return m['ubuntu-6000'] === '3' && m['win-5090'] === '2' ? m : undefined;
    }, { tries: 300 });
    assert.deepEqual(byRoute, { 'ubuntu-6000': '3', 'win-5090': '2' });

    const up = await query('up{job="homelab-router"}');
    assert.equal(up.length, 1);
    assert.equal(up[0]!.value[1], '1');
    const upstreams = await query('sum(homelab_router_upstream_up)');
    assert.equal(upstreams[0]!.value[1], '4');
  });
});
