// The four JSON-lines logs of SPEC §8, each a pino logger writing to its own file in
// $HOMELAB_ROUTER_LOG_DIR. Prompt text never goes in here unless logging.prompts asks.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';

export interface RouterLogs {
  decisions: Logger;
  failures: Logger;
  recovery: Logger;
  validation: Logger;
  /** Operational messages (start, reload, warnings): stdout, for journald. */
  service: Logger;
  /** Flush every file (tests and shutdown). */
  flush(): void;
}

export const LOG_FILES = {
  decisions: 'router-decisions.jsonl',
  failures: 'upstream-failures.jsonl',
  recovery: 'recovery-events.jsonl',
  validation: 'structured-validation.jsonl',
} as const;

export function logDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOMELAB_ROUTER_LOG_DIR || './logs';
}

function fileLogger(dir: string, file: string): Logger {
  // sync: false batches writes off the request path; minLength 0 keeps lines visible at once
  // for operators tailing the file. Loss on a hard crash is bounded to the OS buffer.
  const dest = pino.destination({ dest: join(dir, file), sync: false, mkdir: true, minLength: 0 });
  return pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, dest);
}

export function openLogs(dir: string, opts: { quiet?: boolean } = {}): RouterLogs {
  mkdirSync(dir, { recursive: true });
  const loggers = {
    decisions: fileLogger(dir, LOG_FILES.decisions),
    failures: fileLogger(dir, LOG_FILES.failures),
    recovery: fileLogger(dir, LOG_FILES.recovery),
    validation: fileLogger(dir, LOG_FILES.validation),
  };
  const service = pino({ level: opts.quiet ? 'silent' : 'info', base: { svc: 'homelab-router' }, timestamp: pino.stdTimeFunctions.isoTime });
  return {
    ...loggers,
    service,
    flush() {
      for (const l of Object.values(loggers)) l.flush();
    },
  };
}
