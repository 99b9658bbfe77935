// `watchdog --once` on a replica of a cluster: the systemd timer of every host fires each
// minute, and only the replica holding the leader lock (the same Redis lock the in-process
// watchdogs take, leader-lock.ts) may act, so one failure restarts a GPU server once.
//
// The lock is taken under this replica's id, or found held under it (by this host's `serve`,
// whose in-process watchdog and this one already exclude each other through the watchdog's
// lock file, and share its state file). It is then kept, not given back: held for two
// watchdog intervals past the round, so the next round of the same host finds it again and
// the failure counts, cooldowns and restart budget of one state file keep deciding. Another
// replica holding it, or Redis unreachable, skips the round. A holder host that dies frees
// it within two intervals (within lease_ttl_ms when its `serve` held it).
import { clusterKeys } from './keys.ts';
import { RedisLink } from './link.ts';
import type { ReplicaConfig } from './replica-config.ts';
import { runScript } from './run-script.ts';
import { HOLD_LOCK } from './scripts.ts';

export type WatchdogGate = { act: true; release(): Promise<void> } | { act: false; why: string };

/** Decides whether this process may run a watchdog round; never waits long on a dead Redis. */
export async function takeWatchdogLock(cfg: ReplicaConfig, watchdogIntervalMs: number): Promise<WatchdogGate> {
  const link = new RedisLink({ url: cfg.redis_url, commandTimeoutMs: cfg.command_timeout_ms, maxReconnectDelayMs: 500 });
  const key = clusterKeys(cfg.key_prefix ?? 'hlr:').lock('probes');
  const holdMs = cfg.lease_ttl_ms + 2 * watchdogIntervalMs;
  const hold = async (): Promise<{ ok: boolean; holder: string }> => {
    const r = (await runScript(link.client, HOLD_LOCK, [key], [cfg.replica_id, holdMs])) as unknown[];
    return { ok: Number(r[0]) === 1, holder: String(r[1] ?? '') };
  };
  const skip = async (why: string): Promise<WatchdogGate> => {
    await link.close();
    return { act: false, why };
  };
  await link.start();
  if (!link.up) return skip(`Redis is unreachable (${link.reason}): no replica can be sure it is the only one acting, so none restarts a GPU server until it returns`);
  let taken: { ok: boolean; holder: string };
  try {
    taken = await hold();
  } catch (err) {
    return skip(`Redis did not answer (${(err as Error).message}): no replica can be sure it is the only one acting`);
  }
  if (!taken.ok) return skip(`replica ${taken.holder} holds the cluster's watchdog lock (${key}); it acts for the lab`);
  // A round longer than the hold keeps it.
  const renew = setInterval(() => void hold().catch(() => undefined), Math.max(1000, Math.floor(holdMs / 3)));
  renew.unref();
  return {
    act: true,
    async release() {
      clearInterval(renew);
      await hold().catch(() => undefined);
      await link.close();
    },
  };
}
