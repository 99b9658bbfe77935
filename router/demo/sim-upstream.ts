// A real HTTP server that behaves like an OpenAI-compatible inference engine. The demo runs
// four of them in place of the GPU machines; the integration and fault tests script them to
// misbehave. Everything is observable (slots, aborts, sockets) so tests can wait for events
// and assert that every gauge returns to zero instead of sleeping.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { SimCall, completionTokens, embed, finishJson, replyChat, sendEndless, streamChat, type Cut } from './sim-call.ts';
import {
  healthAnswer,
  healthPaths,
  immediateAnswer,
  json,
  openaiError,
  overflowAnswer,
  vllmError,
  type Fault,
  type HealthState,
  type SimRuntime,
} from './sim-faults.ts';
import { introspectGet, ollamaShow, type SimIdentity } from './sim-introspect.ts';
import { schemaReply, toolCallFor } from './sim-replies.ts';

export type { Fault, SimRuntime } from './sim-faults.ts';

export interface SimOptions {
  /** Served model name; /v1/models lists it and requests for any other model get vLLM's 404. */
  model: string;
  /** Affects the health paths and the overflow answer. Default 'vllm'. */
  runtime?: SimRuntime;
  /** Concurrent generations. Default 4. */
  slots?: number;
  /** Past `slots`: wait FIFO like vLLM (default), or answer at once like llama.cpp (503) / LM Studio (429). */
  overflow?: 'queue' | 'reject';
  /** Time to first byte once a slot is held. Default 0. */
  latencyMs?: number;
  /** Delay between streamed chunks; a non-streamed reply waits chunks × this. Default 0. */
  tokenIntervalMs?: number;
  /** Assistant content; default `[<model>] echo: <start of the last user message>`. */
  reply?: (body: any) => string;
  /** Content chunks per stream. Default 8. */
  chunks?: number;
  /** Serve /v1/embeddings with deterministic 8-dimension vectors. */
  embeddings?: boolean;
  /**
   * Context the engine reports (vLLM's max_model_len, llama.cpp's per-slot n_ctx, LM Studio's
   * loaded_context_length, Ollama's /api/ps). Default 8192; vLLM's /v1/models lists it only when set.
   */
  contextTokens?: number;
  /** The model sees images, as the runtime reports it (llama.cpp modalities, LM Studio "vlm", Ollama capabilities). */
  vision?: boolean;
  /** Ollama: the model shows as loaded in /api/ps. Default true. */
  loaded?: boolean;
  port?: number;
  host?: string;
  /**
   * The slots the router is meant to use here. Each time more generations than this run at
   * once, who held a slot is noted (see overLimit()), so a soak failure says which requests
   * overlapped and in what state. Unset: nothing is noted.
   */
  slotLimit?: number;
}

export interface SimUpstream {
  /** e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  origin: string;
  port: number;
  /** Requests to /v1/chat/completions and /v1/embeddings with a parseable body, in arrival order. */
  /** Each chat or embeddings request: parsed body, and the text as it arrived. */
  received: Array<{ path: string; body: any; raw: string; headers: Record<string, string | string[] | undefined> }>;
  /** Generations holding a slot now (queued requests do not count). */
  inFlight(): number;
  /** Highest inFlight() since start or the last resetStats(). */
  peakInFlight(): number;
  /** With `slotLimit`: the first few moments above it, each listing the requests holding a slot. */
  overLimit(): string[];
  /** Requests whose client closed the connection before the response finished. */
  aborted(): number;
  /** TCP connections currently open to this server. */
  openSockets(): number;
  /** Chat and embedding responses sent in full with status 200. */
  completed(): number;
  /** Clears received, aborted and completed; peak restarts from the current inFlight(). */
  resetStats(): void;
  /** Queued faults; each applies to the next chat or embedding request that arrives (FIFO). */
  pushFault(...f: Fault[]): void;
  /** A fault for every request once the queued ones are used up; null clears it. */
  setFault(f: Fault | null): void;
  /** Makes the health paths and /v1/models fail, or pass again with null. */
  setHealth(state: HealthState): void;
  /** Resolves once `received.length` reaches n (chat and embedding requests since the last reset). */
  waitForRequests(n: number): Promise<void>;
  /** Resolves once aborted() reaches n. */
  waitForAborts(n: number): Promise<void>;
  /** Closes the listener and every connection, like a machine going down: later connects are refused. */
  stop(): Promise<void>;
  /** Listens again on the same port after stop(). */
  restart(): Promise<void>;
  /** Stops for good; pending waitFor* promises reject. */
  close(): Promise<void>;
}

const CHAT = '/v1/chat/completions';
const EMBEDDINGS = '/v1/embeddings';

interface Waiter {
  n: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((p) => p && typeof p === 'object' && p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text as string)
    .join(' ');
}

function messagesOf(body: any): any[] {
  return Array.isArray(body?.messages) ? body.messages : [];
}

function defaultReply(model: string, body: any): string {
  const lastUser = [...messagesOf(body)].reverse().find((m) => m?.role === 'user');
  const text = textOf(lastUser?.content).replace(/\s+/g, ' ').trim().slice(0, 48);
  return `[${model}] ${text ? `echo: ${text}` : 'hello'}`;
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of req) parts.push(chunk as Buffer);
  } catch {
    return null; // the client went away mid-body; the close handler counts it
  }
  return Buffer.concat(parts).toString('utf8');
}

function describeHolders(holders: Map<SimCall, number>, active: number): string {
  const now = Date.now();
  const each = [...holders].map(([ex, since]) => {
    const s = ex.req.socket;
    const id = ex.req.headers['x-request-id'];
    const socket = s.destroyed ? `socket destroyed${s.errored ? ` (${(s.errored as NodeJS.ErrnoException).code ?? s.errored.message})` : ''}` : s.readableEnded ? 'client FIN read' : 'socket open';
    return `${typeof id === 'string' ? id : '?'} (${now - since} ms, fault ${ex.fault ?? 'none'}, ${ex.res.headersSent ? 'answering' : 'no headers yet'}, ${socket})`;
  });
  return `${active} at once: ${each.join('; ')}`;
}

function cutOf(f: Fault | null): Cut | null {
  if (f?.kind === 'die_after') return { after: f.chunks, mode: 'die' };
  if (f?.kind === 'stall_after') return { after: f.chunks, mode: 'stall' };
  if (f?.kind === 'die_mid_event') return { after: f.chunks, mode: 'die_mid_event' };
  return null;
}

export async function startSimUpstream(opts: SimOptions): Promise<SimUpstream> {
  const runtime = opts.runtime ?? 'vllm';
  const slots = Math.max(1, opts.slots ?? 4);
  const overflow = opts.overflow ?? 'queue';
  const host = opts.host ?? '127.0.0.1';
  const health = healthPaths(runtime);
  const identity: SimIdentity = { runtime, model: opts.model, contextTokens: opts.contextTokens ?? 8192, vision: opts.vision ?? false, slots, loaded: opts.loaded ?? true };

  const received: SimUpstream['received'] = [];
  const faults: Fault[] = [];
  let standing: Fault | null = null;
  let healthState: HealthState = null;
  let active = 0;
  let peak = 0;
  let aborts = 0;
  let completed = 0;
  let closedForGood = false;
  const queue: Array<() => void> = [];
  const live = new Set<SimCall>();
  const sockets = new Set<Socket>();
  const requestWaiters: Waiter[] = [];
  const abortWaiters: Waiter[] = [];

  const notify = (list: Waiter[], value: number): void => {
    for (let i = list.length - 1; i >= 0; i--) {
      const w = list[i]!;
      if (value >= w.n) {
        list.splice(i, 1);
        w.resolve();
      }
    }
  };
  const waitFor = (list: Waiter[], value: number, n: number): Promise<void> => {
    if (value >= n) return Promise.resolve();
    if (closedForGood) return Promise.reject(new Error('sim upstream is closed'));
    const p = new Promise<void>((resolve, reject) => list.push({ n, resolve, reject }));
    // Marked handled so a waiter nobody awaits (e.g. the loser of a race) cannot crash the process.
    p.catch(() => {});
    return p;
  };

  // Only with slotLimit: who holds a slot, for overLimit().
  const holders = opts.slotLimit === undefined ? null : new Map<SimCall, number>();
  const overs: string[] = [];
  const take = (ex: SimCall): void => {
    active++;
    peak = Math.max(peak, active);
    if (holders) {
      holders.set(ex, Date.now());
      if (active > opts.slotLimit! && overs.length < 5) overs.push(describeHolders(holders, active));
    }
    ex.slot = () => {
      holders?.delete(ex);
      active--;
      const next = queue.shift();
      next?.();
    };
  };

  /** Takes a slot, queueing FIFO when overflow is 'queue'. False: rejected, or the client left while queued. */
  const acquire = (ex: SimCall): Promise<boolean> => {
    if (active < slots) {
      take(ex);
      return Promise.resolve(true);
    }
    if (overflow === 'reject') return Promise.resolve(false);
    return new Promise((resolve) => {
      const grant = (): void => {
        off();
        take(ex);
        resolve(true);
      };
      queue.push(grant);
      const off = ex.onGone(() => {
        const i = queue.indexOf(grant);
        if (i >= 0) queue.splice(i, 1);
        resolve(false);
      });
    });
  };

  async function work(ex: SimCall, path: string): Promise<void> {
    const raw = await readBody(ex.req);
    if (raw === null || ex.gone) return;
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      return ex.send(json(400, openaiError('Request body is not valid JSON', 'invalid_request_error', 400)));
    }
    received.push({ path, body, raw, headers: { ...ex.req.headers } });
    notify(requestWaiters, received.length);

    const fault = faults.shift() ?? standing;
    if (fault) ex.fault = fault.kind;
    if (fault?.kind === 'refuse') return ex.drop(true);
    if (fault?.kind === 'endless') return sendEndless(ex, fault.status, fault.contentType ?? 'application/json', fault.head ?? '', fault.trickleMs);
    const canned = fault ? immediateAnswer(fault) : null;
    if (canned) return ex.send(canned);
    if (body?.model !== opts.model) {
      return ex.send(json(404, vllmError(404, `The model \`${body?.model}\` does not exist.`, 'NotFoundError')));
    }
    if (path === CHAT && !Array.isArray(body.messages)) {
      return ex.send(json(400, vllmError(400, 'messages: Field required', 'BadRequestError')));
    }

    if (path === CHAT && !(await acquire(ex))) {
      if (!ex.gone) ex.send(overflowAnswer(runtime));
      return;
    }
    await ex.sleep((opts.latencyMs ?? 0) + (fault?.kind === 'delay' ? fault.ms : 0));
    if (ex.gone) return;
    if (fault?.kind === 'hang') return ex.untilGone();

    const onDone = (): void => {
      ex.release();
      completed++;
    };
    const promptText = messagesOf(body)
      .map((m) => textOf(m?.content))
      .join('');
    if (path === EMBEDDINGS) {
      const inputs: unknown[] = Array.isArray(body.input) ? body.input : [body.input];
      const texts = inputs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x ?? '')));
      const tokens = texts.reduce((n, t) => n + completionTokens(t), 0);
      const data = texts.map((t, index) => ({ object: 'embedding', index, embedding: embed(t) }));
      const out = { object: 'list', data, model: opts.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
      return finishJson(ex, out, cutOf(fault), onDone);
    }
    // A scripted reply wins; then the caller's; then what a model with guided decoding answers.
    const toolCall = fault?.kind === 'reply' || opts.reply ? null : toolCallFor(body, randomUUID().replace(/-/g, '').slice(0, 24));
    const content =
      fault?.kind === 'reply'
        ? fault.content
        : opts.reply
          ? opts.reply(body)
          : (toolCall?.function.arguments ?? schemaReply(body) ?? defaultReply(opts.model, body));
    const plan = {
      model: opts.model,
      content,
      toolCall,
      chunks: Math.max(1, opts.chunks ?? 8),
      intervalMs: opts.tokenIntervalMs ?? 0,
      includeUsage: body.stream_options?.include_usage === true,
      promptTokens: Math.max(1, Math.ceil(promptText.length / 4)),
      cut: cutOf(fault),
      onDone,
    };
    return body.stream === true ? streamChat(ex, plan) : replyChat(ex, plan);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const ex = new SimCall(req, res);
    live.add(ex);
    // 'aborted' fires before the response's 'close'; stopping at once keeps the engine from
    // generating for nobody, and the count is taken once, in 'close'.
    req.once('aborted', () => ex.end());
    // A client that disconnects after sending its whole body gets no 'aborted': its FIN shows
    // as the socket's 'end', and the response's 'close' only follows a loop turn later. The
    // slot is freed at the FIN, as an engine frees it when it sees the disconnect; freed at
    // 'close', a request the client sent just after closing this one could be counted while
    // this one still held its slot, and peakInFlight() would overstate the concurrency.
    // A reset (RST: a proxy dropping a connection with response bytes still unread) is known
    // just as early, as the socket's 'error', while 'close' waits for the loop's close phase.
    const socket = req.socket;
    const onClientEnd = (): void => {
      if (res.writableFinished) return;
      ex.end();
      ex.release();
    };
    socket.once('end', onClientEnd);
    socket.once('error', onClientEnd);
    res.once('close', () => {
      socket.off('end', onClientEnd);
      socket.off('error', onClientEnd);
      live.delete(ex);
      const abandoned = !res.writableFinished && !ex.selfClosed;
      ex.end();
      ex.release();
      if (abandoned) {
        aborts++;
        notify(abortWaiters, aborts);
      }
    });

    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && health.has(path)) {
      if (healthState === 'endless') return void sendEndless(ex, 200, 'application/json', '{"status":"ok"', 0);
      return ex.send(healthAnswer(runtime, healthState, path, opts.model, opts.contextTokens));
    }
    const about = req.method === 'GET' && healthState === null ? introspectGet(identity, path) : null;
    if (about) return ex.send(about);
    if (req.method === 'POST' && path === '/api/show' && runtime === 'ollama') {
      void readBody(req).then((raw) => {
        let body: unknown = null;
        try {
          body = JSON.parse(raw ?? '');
        } catch {
          // Ollama answers a body it cannot parse with 400; the model check below covers it as 404.
        }
        ex.send(ollamaShow(identity, body));
      });
      return;
    }
    if (req.method === 'POST' && (path === CHAT || (path === EMBEDDINGS && opts.embeddings))) {
      work(ex, path).catch((err: unknown) => {
        if (!ex.gone && !res.headersSent) ex.send(json(500, openaiError(String(err), 'server_error', 500)));
        else if (!ex.gone) ex.drop(false);
      });
      return;
    }
    req.resume();
    ex.send(json(404, openaiError(`Not found: ${req.method} ${path}`, 'invalid_request_error', 404)));
  }

  const server = createServer(handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });

  const port = await listen(opts.port ?? 0);

  async function stop(): Promise<void> {
    // Whatever is cut off here was cut off by the machine, not by its client.
    for (const ex of live) {
      ex.selfClosed = true;
      ex.end();
    }
    const closed = server.listening ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    // A socket's 'close' comes a tick after destroy(); waiting for each keeps openSockets() exact on return.
    const gone = [...sockets].map((s) => new Promise((r) => s.once('close', r)));
    server.closeAllConnections();
    for (const s of sockets) s.destroy();
    await Promise.all([closed, ...gone]);
  }

  const origin = `http://${host}:${port}`;
  return {
    url: `${origin}/v1`,
    origin,
    port,
    received,
    inFlight: () => active,
    peakInFlight: () => peak,
    overLimit: () => [...overs],
    aborted: () => aborts,
    openSockets: () => sockets.size,
    completed: () => completed,
    resetStats() {
      received.length = 0;
      aborts = 0;
      completed = 0;
      peak = active;
    },
    pushFault: (...f) => void faults.push(...f),
    setFault: (f) => void (standing = f),
    setHealth: (state) => void (healthState = state),
    waitForRequests: (n) => waitFor(requestWaiters, received.length, n),
    waitForAborts: (n) => waitFor(abortWaiters, aborts, n),
    stop,
    async restart() {
      if (closedForGood) throw new Error('sim upstream is closed');
      if (!server.listening) await listen(port);
    },
    async close() {
      if (closedForGood) return;
      closedForGood = true;
      await stop();
      faults.length = 0;
      for (const w of [...requestWaiters.splice(0), ...abortWaiters.splice(0)]) {
        w.reject(new Error(`sim upstream ${origin} closed before ${w.n} events`));
      }
    },
  };
}
