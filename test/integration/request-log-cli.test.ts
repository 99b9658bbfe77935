// `homelab-router requests` and `usage`: the real bin against a running router's request log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chat, coding, labFor, pinned, postJson } from '../helpers/faults.ts';
import { cliEnv, runCli } from '../helpers/cli.ts';

const TOKEN = 'reqlog-cli-token';

test('CLI – requests and usage print readable tables, --json, --help; a bad flag exits 2', async (t) => {
  const lab = await labFor(t, {
    dataDir: mkdtempSync(join(tmpdir(), 'hr-data-')),
    adminToken: TOKEN,
    edit: (doc: any) => (doc.pricing = { reference: { 'ubuntu-6000': 'anthropic/claude-sonnet-4-5' }, overrides: {} }),
  });
  for (let i = 0; i < 3; i++) await chat(lab, coding(), { 'x-request-id': `cli-ok-${i}` });
  await chat(lab, pinned('homelab/fast', 'classify this'), { 'x-request-id': 'cli-fast' });
  await postJson(`${lab.url}/chat/completions`, '{', { 'x-request-id': 'cli-bad' });
  await lab.svc.requestLog!.drained();
  const env = cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN, HOMELAB_ROUTER_URL: lab.base });

  const list = await runCli(['requests', '--since', '1h'], { env });
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0]!, /^TIME \(UTC\)\s+STATUS\s+ENDPOINT\s+ROUTE\s+BUCKET\s+CLIENT\s+MODEL\s+DURATION\s+TOKENS IN\/OUT\s+COST-EQ\s+PATH\s+REQUEST ID$/);
  assert.equal(lines.length, 6);
  assert.match(lines[1]!, /400 invalid_request .*cli-bad$/);
  assert.match(lines[2]!, /200 .*ubuntu-4090 .*unpriced .*cli-fast$/);
  assert.match(lines[3]!, /200 .*ubuntu-6000 +coding .*\$0\.\d{4} .*cli-ok-2$/);

  const errors = await runCli(['requests', '--status', '4xx', '--json'], { env });
  assert.equal(errors.code, 0);
  assert.deepEqual(JSON.parse(errors.stdout).requests.map((r: any) => r.request_id), ['cli-bad']);
  const byRoute = await runCli(['requests', '--route', 'ubuntu-4090', '--client', '127.0.0.1'], { env });
  assert.equal(byRoute.stdout.trim().split('\n').length, 2);

  const usage = await runCli(['usage', '--range', '7d', '--by', 'route'], { env });
  assert.equal(usage.code, 0, usage.stderr);
  const u = usage.stdout.trim().split('\n');
  assert.match(u[0]!, /^7d by route, .* UTC$/);
  assert.match(u[1]!, /^ROUTE\s+REQUESTS\s+ERRORS\s+ERR%\s+PROMPT TOK\s+COMPL TOK\s+P50\s+P95\s+COST-EQUIVALENT$/);
  assert.match(usage.stdout, /^ubuntu-6000 +3 +0 +0\.0% .* \$0\.\d{4}$/m);
  assert.match(usage.stdout, /^ubuntu-4090 +1 +0 .* unpriced$/m);
  assert.match(usage.stdout, /^TOTAL +5 +1 +20\.0% .*\(\+2 unpriced\)$/m);
  const usageJson = JSON.parse((await runCli(['usage', '--by', 'client', '--json'], { env })).stdout);
  assert.equal(usageJson.by, 'client');
  assert.equal(usageJson.series[0].key, '127.0.0.1');

  const help = await runCli(['requests', '--help'], { env });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: homelab-router requests/);
  assert.equal((await runCli(['usage', '--help'], { env })).code, 0);
  for (const bad of [['requests', '--bogus'], ['requests', '--since', 'yesterday'], ['usage', '--range', '90d'], ['usage', '--by', 'user'], ['usage', 'extra']]) {
    const r = await runCli(bad, { env });
    assert.equal(r.code, 2, bad.join(' '));
    assert.match(r.stderr, /usage: homelab-router/);
  }
  const noToken = await runCli(['requests'], { env: cliEnv({ HOMELAB_ROUTER_URL: lab.base }) });
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /HOMELAB_ROUTER_ADMIN_TOKEN/);
});
