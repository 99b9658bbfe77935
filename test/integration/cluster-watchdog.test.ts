// `homelab-router watchdog --once` (the systemd timer's entry point) on replicas of a cluster:
// it takes the same Redis leader lock as the in-process watchdog and acts only while it holds
// it, so two hosts' timers firing together restart a GPU server once, not twice. The route is
// down (nothing listens at its address) and its host's SSH port is closed, so a round that
// acts tries a restart that fails (exit 1, a row in the table); a round that does not act says
// why and exits 0. A real redis-server on loopback holds the lock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@redis/client';
import { dump as dumpYaml } from 'js-yaml';
import { cliEnv, runCli, type CliResult } from '../helpers/cli.ts';
import { freePort } from '../helpers/net.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

let redis: RedisServer;
let redisClient: ReturnType<typeof createClient>;
let deadUrl: string;
let closedSshPort: number;
const PREFIX = 'wd:';
const LOCK = `${PREFIX}lock:probes`;

before(async () => {
  redis = await startRedis();
  redisClient = createClient({ url: redis.url });
  // The outage test stops Redis under it; it reconnects by itself.
  redisClient.on('error', () => undefined);
  await redisClient.connect();
  deadUrl = `http://127.0.0.1:${await freePort()}/v1`;
  closedSshPort = await freePort();
});

after(async () => {
  await redisClient?.close().catch(() => undefined);
  await redis?.close();
});

function policy(): string {
  const doc = {
    version: 1,
    classifier: { tie_break: ['general'], default_bucket: 'general' },
    health: { timeout_ms: 300 },
    watchdog: { restart_after_failures: 1, cooldown_s: 600, command_timeout_ms: 2000 },
    hosts: { gpu: { address: '127.0.0.1', port: closedSshPort, user: 'homelab', key_file: '/dev/null' } },
    routes: { gpu: { url: deadUrl, model: 'm', runtime: 'vllm', context_tokens: 4000, slots: 1, fallback: 'terminal', recovery: { host: 'gpu', restart: 'systemctl restart vllm' } } },
    buckets: { general: { route: 'gpu' } },
    cluster: { redis_url: redis.url, lease_ttl_ms: 5000, replicas: 2, key_prefix: PREFIX },
  };
  const dir = mkdtempSync(join(tmpdir(), 'hr-cluster-wd-'));
  const path = join(dir, 'routing_policy.yaml');
  writeFileSync(path, dumpYaml(doc));
  return path;
}

/** One host's timer: its own log directory (state and lock files), its replica id. */
function host(id: string): { logDir: string; run(policyPath: string): Promise<CliResult> } {
  const logDir = mkdtempSync(join(tmpdir(), `hr-wd-${id}-`));
  return { logDir, run: (p) => runCli(['watchdog', '--once', '--policy', p], { env: cliEnv({ HOMELAB_ROUTER_LOG_DIR: logDir, HOMELAB_ROUTER_REPLICA_ID: id }) }) };
}

const acted = (r: CliResult): boolean => /^gpu\s+down\s+1\s+restart\s+failed/m.test(r.stdout);

test('watchdog --once: another replica holds the lock → the round is skipped, nothing restarted, the lock left alone', async () => {
  const p = policy();
  await redisClient.set(LOCK, 'router-b', { PX: 60_000 });
  const a = host('router-a');
  const r = await a.run(p);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /round skipped: replica router-b holds the cluster's watchdog lock/);
  assert.equal(acted(r), false);
  assert.equal(existsSync(join(a.logDir, 'recovery-events.jsonl')), false, 'a skipped round writes no recovery event');
  assert.equal(await redisClient.get(LOCK), 'router-b');
  await redisClient.del(LOCK);
});

test('watchdog --once: the lock free → it takes it and acts; it keeps it, so the next rounds act from the same host', async () => {
  const p = policy();
  const a = host('router-a');
  const r = await a.run(p);
  assert.equal(r.code, 1, 'the restart over the closed SSH port fails');
  assert.ok(acted(r), r.stdout);
  assert.equal(await redisClient.get(LOCK), 'router-a', 'kept past the round, for the next one');
  const ttl = await redisClient.pTTL(LOCK);
  assert.ok(ttl > 5000 && ttl <= 5000 + 2 * 60_000, `held for two watchdog intervals past the round, not ${ttl} ms`);
  const b = await host('router-b').run(p);
  assert.equal(acted(b), false, 'the other host\'s timer skips');
  assert.match(b.stdout, /round skipped: replica router-a holds/);
  const again = await a.run(p);
  assert.ok(again.stdout.includes('ROUTE') && !/round skipped/.test(again.stdout), 'the holder\'s next round runs');
  await redisClient.del(LOCK);
});

test('watchdog --once: the lock held by this replica\'s own serve → it acts and leaves the lock to serve', async () => {
  const p = policy();
  await redisClient.set(LOCK, 'router-a', { PX: 60_000 });
  const r = await host('router-a').run(p);
  assert.ok(acted(r), r.stdout);
  assert.equal(await redisClient.get(LOCK), 'router-a');
  await redisClient.del(LOCK);
});

test('watchdog --once: two hosts\' timers firing together → exactly one acts', async () => {
  const p = policy();
  const [a, b] = await Promise.all([host('router-a').run(p), host('router-b').run(p)]);
  assert.equal([a, b].filter(acted).length, 1, `a:\n${a.stdout}\nb:\n${b.stdout}`);
  const skipped = acted(a) ? b : a;
  assert.equal(skipped.code, 0);
  assert.match(skipped.stdout, /round skipped: replica router-[ab] holds/);
  assert.equal(await redisClient.get(LOCK), acted(a) ? 'router-a' : 'router-b');
  await redisClient.del(LOCK);
});

test('watchdog --once: Redis unreachable → no replica acts', async () => {
  const p = policy();
  await redis.stop();
  try {
    const r = await host('router-a').run(p);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /round skipped: Redis is unreachable/);
    assert.equal(acted(r), false);
  } finally {
    await redis.start();
    await redisClient.ping().catch(() => undefined);
  }
});
