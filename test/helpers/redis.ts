// A real redis-server on a loopback port for the replica tests: started, stopped and started
// again on the same port (to test a Redis outage), and removed by close(). Debian's
// redis-server is installed by .ci/run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

export interface RedisServer {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'hr-redis-'));
  let proc: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''], { stdio: ['ignore', 'pipe', 'inherit'] });
      const p = proc;
      // Ready when it says so on stdout; a failure to start ends the process instead.
      await new Promise<void>((resolve, reject) => {
        let seen = '';
        const onData = (d: Buffer) => {
          seen = (seen + d.toString()).slice(-4096);
          if (!seen.includes('Ready to accept connections')) return;
          p.stdout!.off('data', onData);
          p.stdout!.resume();
          resolve();
        };
        p.stdout!.on('data', onData);
        p.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${seen.slice(-500)}`)));
      });
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    },
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
