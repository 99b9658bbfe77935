// `homelab-router watchdog --once`: what the systemd timer runs each minute. One round, a
// table for the journal, an exit code the timer's OnFailure can act on.
import { isAbsolute, join } from 'node:path';
import pino from 'pino';
import { openLogs, type RouterLogs } from '../obs/logs.ts';
import { loadPolicyFile, PolicyError } from '../policy/load.ts';
import { probeRoute } from '../upstream/probe.ts';
import { replicaConfig } from '../cluster/replica-config.ts';
import { runRemote } from './ssh-exec.ts';
import { Watchdog, type WatchdogReport } from './watchdog.ts';

export interface WatchdogOnceOptions {
  policyPath: string;
  logDir: string;
  out: (line: string) => void;
}

/** 0: round done, every action that ran succeeded. 1: invalid policy, or an action failed. */
export async function runWatchdogOnce(opts: WatchdogOnceOptions): Promise<number> {
  let compiled;
  try {
    compiled = loadPolicyFile(opts.policyPath);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    opts.out(err.message);
    return 1;
  }
  const policy = compiled.doc;
  const statePath = isAbsolute(policy.watchdog.state_file) ? policy.watchdog.state_file : join(opts.logDir, policy.watchdog.state_file);
  // With a cluster, only the replica holding the leader lock acts (cluster/watchdog-gate.ts).
  const gate = policy.cluster ? await (await import('../cluster/watchdog-gate.ts')).takeWatchdogLock(replicaConfig(policy.cluster), policy.watchdog.interval_s * 1000) : null;
  if (gate && !gate.act) {
    for (const line of formatReport({ at: Date.now(), state: 'memory', routes: [], failed: false, skipped: gate.why })) opts.out(line);
    return 0;
  }
  const logs = openLogs(opts.logDir, { quiet: true });
  try {
    const watchdog = new Watchdog({
      policy: () => compiled,
      probe: (route) => probeRoute(compiled.route(route), policy.health.timeout_ms),
      exec: runRemote,
      log: logs.recovery,
      statePath,
    });
    const report = await watchdog.runOnce();
    for (const line of formatReport(report)) opts.out(line);
    return report.failed ? 1 : 0;
  } finally {
    await closeLogs(logs);
    if (gate?.act) await gate.release();
  }
}

export function formatReport(report: WatchdogReport): string[] {
  const lines: string[] = [];
  if (report.skipped) return [`watchdog: round skipped: ${report.skipped}`];
  if (report.state === 'corrupt') lines.push('watchdog: state file was unreadable; started fresh (see recovery-events.jsonl)');
  const rows = report.routes.map((r) => [
    r.route,
    r.probe.ok ? 'ok' : r.probe.cuda ? 'cuda' : r.probe.loading ? 'loading' : r.probe.busy ? 'busy' : r.probe.status !== undefined ? `http ${r.probe.status}` : 'down',
    String(r.consecutive_failures),
    r.action,
    r.result + (r.exit_code !== undefined && r.exit_code !== null ? ` (exit ${r.exit_code})` : '') + (r.timed_out ? ' (timed out)' : ''),
    r.error ?? r.why,
  ]);
  const header = ['ROUTE', 'PROBE', 'FAILURES', 'ACTION', 'RESULT', 'WHY'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) lines.push(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
  return lines;
}

// A one-shot process must not return before its recovery lines are on disk: the async
// pino destinations are ended and awaited here.
async function closeLogs(logs: RouterLogs): Promise<void> {
  type Closable = { end(): void; once(event: 'close' | 'error', cb: () => void): void };
  const streams = [logs.decisions, logs.failures, logs.recovery, logs.validation].map((l) => (l as unknown as Record<symbol, Closable>)[pino.symbols.streamSym]!);
  await Promise.all(
    streams.map(
      (stream) =>
        new Promise<void>((resolve) => {
          stream.once('close', resolve);
          stream.once('error', resolve);
          stream.end();
        }),
    ),
  );
}
