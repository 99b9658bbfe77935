// The real `homelab-router` bin as a child process: one-shot commands through execFile, and
// `serve` as a long-running router whose address is read from its own "listening" log line.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from './poll.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/homelab-router.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Environment without the caller's HOMELAB_ROUTER_* settings, plus `extra`. The data directory
 * (requests.db) is a fresh temp folder unless `extra` names one, so no test writes ./data.
 */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOMELAB_ROUTER_')) env[k] = v;
  return { ...env, HOMELAB_ROUTER_DATA_DIR: mkdtempSync(join(tmpdir(), 'hr-cli-data-')), ...extra };
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: REPO, env: opts.env ?? cliEnv(), timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`homelab-router ${args.join(' ')} did not finish: ${err.message}\nstderr: ${stderr}`));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

export interface ServeProcess {
  base: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then SIGKILL if the router has not exited after its graceful shutdown. */
  stop(): Promise<void>;
}

/** Starts `homelab-router serve` and resolves once it answers /readyz with 200. */
export async function startServe(args: string[], env: NodeJS.ProcessEnv): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: ServeProcess = {
    base: '',
    child,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(force);
    },
  };
  try {
    proc.base = await pollUntil('the router to log its listen address', () => {
      if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}\nstdout: ${out}\nstderr: ${err}`);
      for (const line of out.split('\n')) {
        let rec: { msg?: string; listen?: string };
        try {
          rec = JSON.parse(line) as typeof rec;
        } catch {
          continue; // not a log line, or one still being written
        }
        if (rec.msg === 'homelab-router listening' && rec.listen) return rec.listen;
      }
      return undefined;
    }, { tries: 200, everyMs: 50 });
    await pollUntil('GET /readyz to answer 200', async () => {
      const res = await fetch(`${proc.base}/readyz`).catch(() => null);
      await res?.body?.cancel();
      return res?.status === 200 ? true : undefined;
    });
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return proc;
}
