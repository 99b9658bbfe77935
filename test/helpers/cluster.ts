// Replicas for the cluster tests (SPEC §14): real `homelab-router serve` processes sharing a
// real redis-server (helpers/redis.ts), each with its own data and log directories.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump as dumpYaml } from 'js-yaml';
import { cliEnv, startServe, type ServeProcess } from './cli.ts';

export const CLUSTER_TOKEN = 'cluster-test-token';

export interface ClusterPolicy {
  redisUrl: string;
  prefix: string;
  gpuUrl: string;
  cpuUrl: string;
  replicas: number;
  gpuSlots?: number;
  leaseTtlMs?: number;
  extra?: Record<string, unknown>;
}

/** Two routes: `gpu` (few slots, falls back to `cpu`) and `cpu`; the sims behind take far more. */
export function clusterPolicyFile(p: ClusterPolicy): string {
  const doc = {
    version: 1,
    server: { listen: '127.0.0.1:0', request_timeout_ms: 60000 },
    health: { interval_s: 1 },
    classifier: { scope: 'last_user', tie_break: ['chat', 'unknown'], default_bucket: 'unknown' },
    routes: {
      gpu: { url: p.gpuUrl, model: 'gpu-model', runtime: 'vllm', context_tokens: 32768, slots: p.gpuSlots ?? 2, queue: 16, queue_timeout_ms: 20000, fallback: { busy: 'cpu', outage: 'cpu' } },
      cpu: { url: p.cpuUrl, model: 'cpu-model', runtime: 'vllm', context_tokens: 32768, slots: 8, queue: 8, fallback: 'terminal' },
    },
    buckets: { chat: { keywords: ['joke'], route: 'cpu' }, unknown: { route: 'gpu' } },
    cluster: { redis_url: p.redisUrl, lease_ttl_ms: p.leaseTtlMs ?? 1500, replicas: p.replicas, key_prefix: p.prefix },
    ...p.extra,
  };
  const dir = mkdtempSync(join(tmpdir(), 'hr-cluster-'));
  const path = join(dir, 'routing_policy.yaml');
  writeFileSync(path, dumpYaml(doc));
  return path;
}

/** A replica's directories: pass the same one again to restart the replica with its keys.db. */
export function replicaDir(id: string): string {
  return mkdtempSync(join(tmpdir(), `hr-${id}-`));
}

export async function startReplica(id: string, policy: string, dir = replicaDir(id)): Promise<ServeProcess> {
  return startServe(['--policy', policy], cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: CLUSTER_TOKEN, HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs'), HOMELAB_ROUTER_DATA_DIR: join(dir, 'data'), HOMELAB_ROUTER_REPLICA_ID: id }));
}

export function chat(base: string, model: string, text = 'hello', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model, messages: [{ role: 'user', content: text }] }) });
}

export async function admin(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${CLUSTER_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return res.json();
}

/** The gpu route's row of /admin/upstreams. */
export async function gpuRow(base: string): Promise<any> {
  return (await admin(base, 'GET', '/admin/upstreams')).upstreams.find((u: any) => u.route === 'gpu');
}
