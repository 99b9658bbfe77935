// A real OpenSSH server on 127.0.0.1 for tests: throwaway host and client keys, its own
// config in a temp dir, a known_hosts file that trusts it. Nothing outside the temp dir
// changes except /run/sshd, which sshd insists on when started as root.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD_PATH = '/usr/sbin/sshd';

export function sshdAvailable(): boolean {
  return existsSync(SSHD_PATH) && existsSync('/usr/bin/ssh-keygen');
}

export interface TestSshd {
  port: number;
  dir: string;
  user: string;
  /** Private key the server accepts. */
  clientKey: string;
  /** known_hosts with a plain `[127.0.0.1]:PORT` entry for the server's key. */
  knownHosts: string;
  /** The server's public key line (`ssh-ed25519 AAAA... comment`). */
  hostKeyLine: string;
  /** As `ssh-keygen -lf` prints it: SHA256:base64-without-padding. */
  hostKeyFingerprint: string;
  /** A known_hosts line for this server with the host name hashed (`|1|salt|hash`). */
  hashedKnownHostsLine(): string;
  /** A fresh ed25519 public key line that is not the server's (for mismatch tests). */
  otherKeyLine(): string;
  stop(): Promise<void>;
}

export async function startSshd(): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'hr-sshd-'));
  const keygen = (file: string) => execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'homelab-router-test', '-f', file]);
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'client_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const port = await freePort();
  const config = [
    `ListenAddress 127.0.0.1`,
    `Port ${port}`,
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'LogLevel VERBOSE',
  ].join('\n');
  writeFileSync(join(dir, 'sshd_config'), config + '\n');

  const child = spawn(SSHD_PATH, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitListening(child, port);

  const hostKeyLine = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim();
  const [type, blob] = hostKeyLine.split(/\s+/);
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${type} ${blob}\n`);
  const fp = execFileSync('/usr/bin/ssh-keygen', ['-lf', join(dir, 'host_key.pub')], { encoding: 'utf8' }).split(/\s+/)[1]!;

  return {
    port,
    dir,
    user: userInfo().username,
    clientKey: join(dir, 'client_key'),
    knownHosts,
    hostKeyLine,
    hostKeyFingerprint: fp,
    hashedKnownHostsLine() {
      const salt = randomBytes(20);
      const hash = createHmac('sha1', salt).update(`[127.0.0.1]:${port}`).digest('base64');
      return `|1|${salt.toString('base64')}|${hash} ${type} ${blob}`;
    },
    otherKeyLine() {
      const file = join(dir, `other_${randomBytes(4).toString('hex')}`);
      keygen(file);
      return readFileSync(`${file}.pub`, 'utf8').trim();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

// sshd -e logs "Server listening on 127.0.0.1 port N." once the socket is bound: wait for
// that line rather than polling the port.
function waitListening(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (d: Buffer) => {
      log += d.toString();
      if (process.env.SSHD_DEBUG) process.stderr.write(d);
      if (log.includes(`port ${port}`) && /Server listening/.test(log)) {
        child.stderr!.off('data', onData);
        child.off('exit', onExit);
        // Keep draining so sshd never blocks on a full pipe; SSHD_DEBUG=1 shows its log.
        child.stderr!.on('data', (d: Buffer) => {
          if (process.env.SSHD_DEBUG) process.stderr.write(d);
        });
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`sshd exited (${code}) before listening:\n${log}`));
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}
