// Run one recovery command on a GPU host over SSH (key auth only) and report what happened.
// The host key is always checked: a pinned fingerprint in the policy, else known_hosts. A
// recovery command that answers to an impostor would hand it our key's trust, so an unknown
// key is an error, never "trust on first use".
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import type { ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import type { HostConfig } from '../policy/types.ts';

export interface RemoteResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export interface RemoteOptions {
  timeoutMs: number;
  /** Per stream; the tail is kept because a script's last lines say how it ended. */
  maxOutputBytes?: number;
}

const DEFAULT_MAX_OUTPUT = 16 * 1024;
const MAX_READY_TIMEOUT_MS = 20_000;

// ssh2 (~15 MB of RSS with its crypto) is loaded on the first recovery command, not at start:
// most routers never run one, and a watchdog that does pays the load once.
let ssh2: typeof import('ssh2') | undefined;
function ssh2Client(): InstanceType<typeof import('ssh2').Client> {
  ssh2 ??= createRequire(import.meta.url)('ssh2') as typeof import('ssh2');
  return new ssh2.Client();
}

export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? homedir() + path.slice(1) : path;
}

export function runRemote(host: HostConfig, command: string, opts: RemoteOptions): Promise<RemoteResult> {
  const target = `${host.user}@${host.address}:${host.port}`;
  const started = Date.now();
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(expandHome(host.key_file));
  } catch (err) {
    return Promise.reject(new Error(`ssh ${target}: cannot read key_file ${host.key_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`));
  }
  let known: KnownKey[] = [];
  if (!host.host_key_sha256) {
    try {
      known = knownKeysFor(readKnownHosts(host), host.address, host.port);
    } catch (err) {
      return Promise.reject(new Error(`ssh ${target}: ${(err as Error).message}`));
    }
  }

  return new Promise((resolve, reject) => {
    const conn = ssh2Client();
    const out = new TailBuffer(opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
    const err = new TailBuffer(opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
    let hostKeyProblem: string | undefined;
    let failure: Error | undefined;
    let exitCode: number | null = null;
    let signal: string | null = null;
    let timedOut = false;
    let channel: ClientChannel | undefined;
    let gotExit = false;
    let settled = false;
    let hangupTimer: NodeJS.Timeout | undefined;

    // One deadline for connect + command. The promise settles only on the connection's
    // 'close', so no socket outlives the call.
    const timer = setTimeout(() => {
      if (gotExit) return conn.destroy(); // finished, only the goodbye is slow
      timedOut = true;
      if (channel) {
        // Best effort: OpenSSH honours signal requests for non-root logins (it refuses them
        // without privilege separation, i.e. as root); otherwise the remote command may keep
        // running after we hang up, which is one more reason to log in as a service user.
        try {
          channel.signal('KILL');
          channel.close();
        } catch {
          /* channel already gone */
        }
        // A graceful end lets the signal reach the host; a dead peer gets cut off shortly after.
        conn.end();
        hangupTimer = setTimeout(() => conn.destroy(), 2000);
      } else {
        failure = new Error(`ssh ${target}: no connection within ${opts.timeoutMs} ms`);
        conn.destroy();
      }
    }, opts.timeoutMs);

    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(hangupTimer);
      if (failure) return reject(failure);
      resolve({
        exitCode,
        signal,
        stdout: out.text(),
        stderr: err.text(),
        truncated: out.truncated || err.truncated,
        timedOut,
        durationMs: Date.now() - started,
      });
    };

    conn.on('ready', () => {
      conn.exec(command, (e, stream) => {
        if (e) {
          failure = new Error(`ssh ${target}: cannot start command: ${e.message}`);
          conn.end();
          return;
        }
        channel = stream;
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => err.push(d));
        stream.on('exit', (code: number | null, sig?: string) => {
          gotExit = true;
          exitCode = typeof code === 'number' ? code : null;
          signal = sig ?? null;
        });
        stream.on('close', () => conn.end());
      });
    });
    conn.on('error', (e: Error & { level?: string; code?: string }) => {
      // After a timeout or a finished command, a teardown error changes nothing we report.
      if ((timedOut && channel) || gotExit) return;
      failure ??= new Error(describeError(target, host, e, hostKeyProblem));
    });
    conn.on('close', finish);

    const config: ConnectConfig = {
      host: host.address,
      port: host.port,
      username: host.user,
      privateKey,
      readyTimeout: Math.min(opts.timeoutMs, MAX_READY_TIMEOUT_MS),
      hostVerifier: (key: Buffer) => {
        hostKeyProblem = checkHostKey(host, known, key);
        return hostKeyProblem === undefined;
      },
    };
    // Ask for a key type known_hosts has, as OpenSSH does; otherwise a host with both an
    // RSA and an ed25519 key could offer the one we have no record of.
    const algos = known.filter((k) => !k.revoked).flatMap((k) => HOST_KEY_ALGOS[k.type] ?? []);
    if (algos.length > 0) config.algorithms = { serverHostKey: [...new Set(algos)] };
    try {
      conn.connect(config);
    } catch (e) {
      failure = new Error(`ssh ${target}: key_file ${host.key_file}: ${(e as Error).message} (an unencrypted OpenSSH, PEM or PPK key is needed)`);
      conn.destroy();
      // A synchronous throw (an unparsable key) never opened a socket, so 'close' may not come.
      setImmediate(finish);
    }
  });
}

function describeError(target: string, host: HostConfig, e: Error & { level?: string; code?: string }, hostKeyProblem?: string): string {
  if (hostKeyProblem) return `ssh ${target}: ${hostKeyProblem}`;
  if (e.code === 'ECONNREFUSED') return `ssh ${target}: connection refused (is sshd running and the port right?)`;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `ssh ${target}: cannot resolve ${host.address}`;
  if (e.level === 'client-authentication') {
    return `ssh ${target}: authentication failed with key ${host.key_file} (is its public key in ~${host.user}/.ssh/authorized_keys?)`;
  }
  if (e.level === 'client-timeout') return `ssh ${target}: no SSH handshake in time (${e.message})`;
  if (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH' || e.code === 'ETIMEDOUT') return `ssh ${target}: host unreachable (${e.code})`;
  if (/before handshake/.test(e.message)) return `ssh ${target}: connection closed before the SSH handshake (host down, firewall, or not an SSH port?)`;
  return `ssh ${target}: ${e.message}`;
}

export function fingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

function checkHostKey(host: HostConfig, known: KnownKey[], key: Buffer): string | undefined {
  const seen = fingerprint(key);
  const name = host.port === 22 ? host.address : `[${host.address}]:${host.port}`;
  if (host.host_key_sha256) {
    const want = host.host_key_sha256.replace(/=+$/, '');
    return want === seen ? undefined : `host key mismatch for ${name}: policy pins ${want}, server offered ${seen}`;
  }
  if (known.some((k) => k.revoked && k.blob.equals(key))) return `host key ${seen} for ${name} is marked @revoked in ${knownHostsPath(host)}`;
  const candidates = known.filter((k) => !k.revoked);
  if (candidates.length === 0) {
    return `host key for ${name} is not in ${knownHostsPath(host)} (server offered ${seen}); verify it, then add it with ssh-keyscan or pin it as hosts.<name>.host_key_sha256`;
  }
  if (candidates.some((k) => k.blob.equals(key))) return undefined;
  return `host key mismatch for ${name}: server offered ${seen}, which is not the key in ${knownHostsPath(host)}; someone may be impersonating the host, or it was reinstalled`;
}

// ---- known_hosts ----

interface KnownKey {
  type: string;
  blob: Buffer;
  revoked: boolean;
}

const HOST_KEY_ALGOS: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

function knownHostsPath(host: HostConfig): string {
  return expandHome(host.known_hosts ?? '~/.ssh/known_hosts');
}

function readKnownHosts(host: HostConfig): string {
  const path = knownHostsPath(host);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return ''; // reported as "not in known_hosts" once we see the key
    throw new Error(`cannot read known_hosts ${path}: ${code ?? (err as Error).message}`);
  }
}

/** The keys a known_hosts text lists for address:port (plain, [host]:port, hashed, wildcards). */
export function knownKeysFor(text: string, address: string, port: number): KnownKey[] {
  const name = port === 22 ? address : `[${address}]:${port}`;
  const keys: KnownKey[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]!.startsWith('@')) {
      const marker = fields.shift()!;
      if (marker === '@revoked') revoked = true;
      else continue; // @cert-authority: certificates are not supported here
    }
    const [hosts, type, b64] = fields;
    if (!hosts || !type || !b64) continue;
    if (!hostsMatch(hosts, name)) continue;
    keys.push({ type, blob: Buffer.from(b64, 'base64'), revoked });
  }
  return keys;
}

function hostsMatch(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    const want = Buffer.from(hash, 'base64');
    return want.length === mac.length && timingSafeEqual(mac, want);
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    if (!globMatch(negated ? pattern.slice(1) : pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern.toLowerCase() === name.toLowerCase();
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}

// ---- output capture ----

class TailBuffer {
  #chunks: Buffer[] = [];
  #size = 0;
  truncated = false;
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > this.#max * 2) this.#compact();
  }

  text(): string {
    this.#compact();
    return Buffer.concat(this.#chunks).toString('utf8');
  }

  #compact(): void {
    if (this.#size <= this.#max) return;
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [all.subarray(all.length - this.#max)];
    this.#size = this.#max;
    this.truncated = true;
  }
}
