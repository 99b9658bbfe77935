// The request-log worker's CPU priority. Writing a row costs the worker ~25 µs of CPU, about a
// tenth of what routing the request cost; on a router whose cores are all busy that time is
// taken from routing. The worker therefore runs its thread at a lower priority (a higher nice
// value), as databases run their background compaction: when a core is free it writes at once,
// and when routing needs every core the rows wait in the bounded queue (request-log.ts) and are
// written in the next idle moment. Linux only: there a nice value belongs to a thread, and a
// thread's id is read from /proc/thread-self. Elsewhere setpriority() would lower the whole
// process, so nothing is changed.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The worker's nice value: CFS gives it ~1/10 of a core's share against a nice-0 thread. */
export const LOG_WORKER_NICE = 10;

/** This thread's kernel id, or null where threads have no id of their own to renice. */
export function currentThreadId(platform: NodeJS.Platform = process.platform): number | null {
  if (platform !== 'linux') return null;
  try {
    // "<pid>/task/<tid>"
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/**
 * Lowers the calling thread's priority to `nice` (never raises it: an unprivileged process
 * could not raise it back). Returns the thread's nice value afterwards, or null when the
 * thread could not be reniced (not Linux, no /proc, refused).
 */
export function lowerThreadPriority(nice: number, tid: number | null = currentThreadId()): number | null {
  if (tid === null) return null;
  try {
    if (getPriority(tid) < nice) setPriority(tid, nice);
    return getPriority(tid);
  } catch {
    return null;
  }
}
