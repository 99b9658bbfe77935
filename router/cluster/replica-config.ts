// This replica's cluster settings: the policy's cluster block with its id resolved. Shared by
// `serve` and `watchdog --once`, so both act under the same name in the leader lock.
import { hostname } from 'node:os';
import type { ClusterConfig } from '../policy/types.ts';

/** The policy's cluster block with this replica's id resolved. */
export type ReplicaConfig = ClusterConfig & { replica_id: string };

/** The cluster block with this replica's id: the policy's, else $HOMELAB_ROUTER_REPLICA_ID, else the host name. */
export function replicaConfig(cluster: ClusterConfig, fallbackId?: string): ReplicaConfig {
  return { ...cluster, replica_id: cluster.replica_id ?? fallbackId ?? process.env.HOMELAB_ROUTER_REPLICA_ID ?? hostname() };
}
