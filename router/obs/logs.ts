// The four JSON-lines logs of SPEC §8, each a pino logger writing to its own file in
// $HOMELAB_ROUTER_LOG_DIR. Prompt text never goes in here unless logging.prompts asks.
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';

export interface RouterLogs {
  decisions: Logger;
  failures: Logger;
  recovery: Logger;
  validation: Logger;
  /** Operational messages (start, reload, warnings): stdout, for journald. */
  service: Logger;
  /**
   * Writes one router-decisions.jsonl line: byte for byte what `decisions.info(record)` writes.
   * pino spends ~5 µs formatting this 20-field line (its per-key escaping and stringifying);
   * one JSON.stringify into the same destination takes ~2.3 µs, and it runs on every request.
   */
  decision(record: Record<string, unknown>): void;
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

// ISO-8601 time with milliseconds, as pino.stdTimeFunctions.isoTime writes it. The date part
// is formatted once per second: new Date().toISOString() costs ~1 µs here, on every log line.
let isoSecond = -1;
let isoPrefix = '';

export function isoTime(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // 2026-01-31T12:00:00.
  }
  const ms = now - second * 1000;
  return isoPrefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z';
}

function fileLogger(dir: string, file: string): Logger {
  // The file is opened here, synchronously: given a path, sonic-boom opens it asynchronously,
  // and a process that exits before that open completes loses what it logged, and pino's exit
  // flush throws ("sonic boom is not ready yet"), which also stops the decision lines' exit
  // hook below. An unwritable log dir fails at start, not later.
  // sync: false batches writes off the request path; minLength 0 keeps lines visible at once
  // for operators tailing the file. Loss on a hard crash is bounded to the OS buffer.
  const dest = pino.destination({ dest: openSync(join(dir, file), 'a'), sync: false, minLength: 0 });
  return pino({ base: null, timestamp: () => `,"time":"${isoTime()}"`, formatters: { level: (label) => ({ level: label }) } }, dest);
}

/**
 * The decision log's writer: one line per request, formatted here rather than by pino (see
 * RouterLogs.decision). Lines are collected and handed to the file together, FLUSH_MS after
 * the first one or at once past FLUSH_BYTES, so a busy router makes one write per batch
 * instead of one per request: each async file write costs the event loop ~10 µs (a thread-pool
 * round trip), and handed one line at a time while a write is in flight, sonic-boom appends
 * to one growing string and measures its whole byte length again on every append. A line
 * reaches the file at most FLUSH_MS late; flush() (shutdown, tests) and process exit write
 * the pending ones at once.
 */
const FLUSH_MS = 10;
const FLUSH_BYTES = 64 * 1024;

/** Writers holding lines, for the exit hook (empty whenever nothing is pending). */
const withPending = new Set<DecisionLines>();
let exitHookInstalled = false;

class DecisionLines {
  readonly #logger: Logger;
  readonly #dest: { write(data: string): void; flushSync(): void; fd: number };
  #pending: string[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #flushBound = this.flush.bind(this);

  constructor(logger: Logger) {
    this.#logger = logger;
    this.#dest = (logger as unknown as Record<symbol, { write(data: string): void; flushSync(): void; fd: number }>)[pino.symbols.streamSym]!;
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const lines of withPending) lines.flushSync();
      });
    }
  }

  write(record: Record<string, unknown>): void {
    if (!this.#logger.isLevelEnabled('info')) return;
    const fields = JSON.stringify(record);
    const line = `{"level":"info","time":"${isoTime()}"${fields.length > 2 ? ',' + fields.slice(1) : '}'}\n`;
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    if (this.#pendingBytes >= FLUSH_BYTES) return this.flush();
    if (this.#timer !== undefined) return;
    withPending.add(this);
    this.#timer = setTimeout(this.#flushBound, FLUSH_MS);
  }

  /** Hands the pending lines to the file (asynchronously, in order). */
  flush(): void {
    const text = this.#take();
    if (text !== '') this.#dest.write(text);
  }

  /**
   * At exit (after pino's own exit flush): what sonic-boom still buffers, then the pending
   * lines, written synchronously. flush() would only start an async write that exit cuts off.
   */
  flushSync(): void {
    const text = this.#take();
    try {
      this.#dest.flushSync();
      if (text !== '') writeSync(this.#dest.fd, text);
    } catch {
      // A destination that is not open yet or already closed: nothing more can be written.
    }
  }

  /** The pending lines as one string (empty when none), no longer pending. */
  #take(): string {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    withPending.delete(this);
    const text = this.#pending.length === 1 ? this.#pending[0]! : this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    return text;
  }
}

export function openLogs(dir: string, opts: { quiet?: boolean } = {}): RouterLogs {
  let loggers: Record<keyof typeof LOG_FILES, Logger>;
  try {
    mkdirSync(dir, { recursive: true });
    loggers = {
      decisions: fileLogger(dir, LOG_FILES.decisions),
      failures: fileLogger(dir, LOG_FILES.failures),
      recovery: fileLogger(dir, LOG_FILES.recovery),
      validation: fileLogger(dir, LOG_FILES.validation),
    };
  } catch (err) {
    throw new Error(`cannot write the logs in ${dir} (HOMELAB_ROUTER_LOG_DIR): ${(err as Error).message}`);
  }
  const decisionLines = new DecisionLines(loggers.decisions);
  const service = pino({ level: opts.quiet ? 'silent' : 'info', base: { svc: 'homelab-router' }, timestamp: pino.stdTimeFunctions.isoTime });
  return {
    ...loggers,
    service,
    decision: (record) => decisionLines.write(record),
    flush() {
      decisionLines.flush();
      for (const l of Object.values(loggers)) l.flush();
    },
  };
}
