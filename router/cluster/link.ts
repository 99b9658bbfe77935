// The replica's connection to Redis, built to fail fast: no offline queue (a command while
// disconnected fails at once), a short per-command timeout that also covers commands already
// sent, and reconnection in the background. `up` says whether shared state can be used now;
// every change is reported once to the listeners (log line, metric, /readyz).
import { createClient, type RedisClientType } from '@redis/client';

export interface LinkOptions {
  url: string;
  /** Per-command timeout, ms (default 250). */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts, ms (default 2000). */
  maxReconnectDelayMs?: number;
}

export type LinkListener = (up: boolean, reason: string) => void;

export class RedisLink {
  readonly client: RedisClientType;
  /** A second connection: a subscribed connection can run no other commands. */
  readonly subscriber: RedisClientType;
  #up = false;
  #closed = false;
  #listeners: LinkListener[] = [];
  #errorListeners: ((err: Error) => void)[] = [];
  #lastReason = 'not connected yet';
  #probe: NodeJS.Timeout | undefined;

  constructor(opts: LinkOptions) {
    const timeout = opts.commandTimeoutMs ?? 250;
    const maxDelay = opts.maxReconnectDelayMs ?? 2000;
    const make = () =>
      createClient({
        url: opts.url,
        disableOfflineQueue: true,
        commandOptions: { timeout, rejectInFlight: true },
        socket: { connectTimeout: Math.max(timeout, 500), reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, maxDelay) },
      }) as unknown as RedisClientType;
    this.client = make();
    this.subscriber = make();
    this.client.on('ready', () => this.#set(true, 'connected'));
    this.client.on('error', (err: Error) => this.#set(false, err.message || String(err)));
    this.client.on('end', () => this.#set(false, 'connection closed'));
    this.client.on('reconnecting', () => this.#set(false, this.#lastReason));
    // The subscriber's errors are the same outage; they must be handled, not thrown.
    this.subscriber.on('error', () => undefined);
  }

  get up(): boolean {
    return this.#up && !this.#closed;
  }

  get reason(): string {
    return this.#lastReason;
  }

  onChange(listener: LinkListener): void {
    this.#listeners.push(listener);
  }

  /** Error replies from Redis (a script or command it refused): logged, never an outage. */
  onErrorReply(listener: (err: Error) => void): void {
    this.#errorListeners.push(listener);
  }

  /** Starts connecting; resolves once the first attempt ended either way (never rejects). */
  async start(): Promise<void> {
    // connect() itself stays pending while the client retries a Redis that is down: the first
    // 'ready' or 'error' ends the wait instead, and reconnection goes on in the background.
    const firstAttempt = (c: RedisClientType) =>
      new Promise<void>((resolve) => {
        const done = () => {
          c.off('ready', done);
          c.off('error', done);
          resolve();
        };
        c.on('ready', done);
        c.on('error', done);
        c.connect().then(done, done);
      });
    await Promise.all([firstAttempt(this.client), firstAttempt(this.subscriber)]);
  }

  /**
   * A failed command (a timeout on a slow Redis) marks the link down at once, before the
   * client notices anything. While the socket itself stays open, a PING each second tells
   * when Redis answers in time again.
   */
  noteFailure(err: unknown): void {
    // An error reply is Redis answering: a bug to report, not an outage.
    if (isErrorReply(err)) {
      for (const l of this.#errorListeners) l(err as Error);
      return;
    }
    this.#set(false, err instanceof Error ? err.message : String(err));
    if (this.#probe || this.#closed) return;
    this.#probe = setInterval(() => {
      if (this.#up || this.#closed) return this.#stopProbe();
      if (!this.client.isReady) return;
      this.client.ping().then(() => this.#set(true, 'answering again'), () => undefined);
    }, 1000);
    this.#probe.unref();
  }

  #stopProbe(): void {
    clearInterval(this.#probe);
    this.#probe = undefined;
  }

  #set(up: boolean, reason: string): void {
    if (this.#closed) return;
    if (!up) this.#lastReason = reason;
    if (up === this.#up) return;
    this.#up = up;
    for (const l of this.#listeners) l(up, reason);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopProbe();
    // A client still retrying a dead Redis is destroyed: close() would wait for it to connect.
    // close() waits for replies still due; a Redis that stopped answering gets a second at most.
    const closeOne = async (c: RedisClientType): Promise<void> => {
      if (!c.isOpen) return;
      if (!c.isReady) return void c.destroy();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 1000)));
      const r = await Promise.race([c.close().then(() => 'closed' as const, () => 'late' as const), late]);
      clearTimeout(timer);
      if (r === 'late' && c.isOpen) c.destroy();
    };
    await Promise.all([closeOne(this.client), closeOne(this.subscriber)]);
  }
}

function isErrorReply(err: unknown): boolean {
  const name = (err as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name === 'SimpleError' || name === 'BlobError' || name === 'ErrorReply';
}
