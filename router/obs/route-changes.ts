// One warning per change of a route's condition (healthy → down, down → healthy, busy,
// loading), naming the route, the URL its probe calls and the error: on stderr for the
// operator's journal, and in upstream-failures.jsonl next to the request failures that
// caused it. A route that never answers is visible from its first failed probes.
import pino, { type Logger } from 'pino';
import type { RouteChange } from '../upstream/route-state.ts';
import type { RouterLogs } from './logs.ts';

export function routeChangeReporter(logs: RouterLogs, opts: { quiet?: boolean } = {}): (change: RouteChange) => void {
  const stderr: Logger = pino(
    { level: opts.quiet ? 'silent' : 'info', base: { svc: 'homelab-router' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 2, sync: true }),
  );
  return (change) => {
    const line = { event: 'route_state', ...change };
    const msg = message(change);
    if (change.to === 'healthy') {
      logs.failures.info(line, msg);
      stderr.info(line, msg);
    } else {
      logs.failures.warn(line, msg);
      stderr.warn(line, msg);
    }
  };
}

function message(c: RouteChange): string {
  const why = c.error ? `: ${c.error}` : '';
  const until = c.until ? ` until ${c.until}` : '';
  const ramp = c.slow_start_s ? `; slow start over ${c.slow_start_s} s` : '';
  return `route ${c.route} ${c.from} -> ${c.to}${until} (${c.cause}, probe ${c.url})${why}${ramp}`;
}
