// Names of everything the replicas share in Redis. A route's keys carry it as a hash tag, so a
// Redis Cluster keeps them on one node and a script can touch them together.
export interface ClusterKeys {
  leases(route: string): string;
  replicas(route: string): string;
  /** Set (with an expiry) while some replica has a request waiting for the route. */
  waiting(route: string): string;
  drains: string;
  health: string;
  /** Hash: API key id → the key as stored (keys made at run time, shared-keys.ts). */
  keyRecords: string;
  lock(name: string): string;
  keyRpm(keyId: string): string;
  keyInFlight(keyId: string): string;
  keyMonth(keyId: string, month: string): string;
  /** Pub/sub: a slot came free on a route (message = route). */
  released: string;
  /** Pub/sub: a drain or health change (message = JSON). */
  events: string;
}

export function clusterKeys(prefix = 'hlr:'): ClusterKeys {
  return {
    leases: (route) => `${prefix}{${route}}:leases`,
    // One copy of the replica set per route, in the route's hash slot, so the acquire script
    // reads it atomically with the leases.
    replicas: (route) => `${prefix}{${route}}:replicas`,
    waiting: (route) => `${prefix}{${route}}:waiting`,
    keyRpm: (id) => `${prefix}key:{${id}}:rpm`,
    keyInFlight: (id) => `${prefix}key:{${id}}:in_flight`,
    keyMonth: (id, month) => `${prefix}key:{${id}}:month:${month}`,
    drains: `${prefix}drains`,
    health: `${prefix}health`,
    keyRecords: `${prefix}keys`,
    lock: (name) => `${prefix}lock:${name}`,
    released: `${prefix}released`,
    events: `${prefix}events`,
  };
}
