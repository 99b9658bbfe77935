// One request's lifetime inside the simulated upstream, and the bodies it generates.
// Every timer and wait a call starts is tied to it, so that a client abort or a shutdown
// ends them all at once: the fault tests assert that nothing is left behind.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Canned } from './sim-faults.ts';
import type { SimToolCall } from './sim-replies.ts';

export class SimCall {
  /** The response can no longer complete normally (client gone, connection dropped, shutdown). */
  gone = false;
  /** The sim dropped the connection itself, so its close is not a client abort. */
  selfClosed = false;
  /** The kind of fault this request met, if any (for the sim's own reports). */
  fault: string | undefined;
  /** Releases the generation slot; set while the call holds one. */
  slot: (() => void) | null = null;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #hooks = new Set<() => void>();

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {}

  end(): void {
    if (this.gone) return;
    this.gone = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const hooks = [...this.#hooks];
    this.#hooks.clear();
    for (const h of hooks) h();
  }

  release(): void {
    const slot = this.slot;
    this.slot = null;
    slot?.();
  }

  /** Runs `fn` when the call ends (at once if it already has); returns an unsubscribe. */
  onGone(fn: () => void): () => void {
    if (this.gone) {
      fn();
      return () => {};
    }
    this.#hooks.add(fn);
    return () => this.#hooks.delete(fn);
  }

  /** Resolves after `ms`, or as soon as the call ends. */
  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.gone) return Promise.resolve();
    return new Promise((resolve) => {
      let off: () => void = () => {};
      const t = setTimeout(() => {
        this.#timers.delete(t);
        off();
        resolve();
      }, ms);
      this.#timers.add(t);
      off = this.onGone(resolve);
    });
  }

  untilGone(): Promise<void> {
    return new Promise((resolve) => this.onGone(resolve));
  }

  /** Writes and, when the socket buffer is full, waits for 'drain' (or the end). */
  async write(chunk: string): Promise<void> {
    if (this.gone) return;
    if (this.res.write(chunk)) return;
    await new Promise<void>((resolve) => {
      let off: () => void = () => {};
      const done = (): void => {
        this.res.off('drain', done);
        off();
        resolve();
      };
      this.res.on('drain', done);
      off = this.onGone(done);
    });
  }

  send(c: Canned): void {
    if (this.gone || this.res.headersSent) return;
    this.res.writeHead(c.status, { ...c.headers, 'content-length': String(Buffer.byteLength(c.body)) });
    this.res.end(c.body);
  }

  /** Drops the connection: `reset` sends a TCP RST at once, otherwise pending bytes go out before the FIN. */
  drop(reset: boolean): void {
    this.selfClosed = true;
    const socket = this.res.socket ?? this.req.socket;
    if (reset) socket.resetAndDestroy();
    else socket.destroySoon();
    this.end();
  }
}

/** Where a reply stops short: `die` drops the connection, `stall` goes silent, `die_mid_event` drops it halfway through the next event. */
export interface Cut {
  after: number;
  mode: 'die' | 'stall' | 'die_mid_event';
}

export interface ChatPlan {
  model: string;
  content: string;
  chunks: number;
  intervalMs: number;
  includeUsage: boolean;
  promptTokens: number;
  cut: Cut | null;
  /** Answer with this tool call instead of content (finish_reason "tool_calls"). */
  toolCall?: SimToolCall | null;
  /** Called just before the final bytes go out, so counters settle before the client sees the end. */
  onDone: () => void;
}

export function completionTokens(content: string): number {
  return Math.max(1, Math.ceil(content.length / 4));
}

function split(content: string, n: number): string[] {
  const chars = Array.from(content);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    parts.push(chars.slice(Math.floor((i * chars.length) / n), Math.floor(((i + 1) * chars.length) / n)).join(''));
  }
  return parts;
}

function usage(p: ChatPlan): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const completion = completionTokens(p.content);
  return { prompt_tokens: p.promptTokens, completion_tokens: completion, total_tokens: p.promptTokens + completion };
}

function ids(): { id: string; created: number } {
  return { id: `chatcmpl-${randomUUID().replace(/-/g, '')}`, created: Math.floor(Date.now() / 1000) };
}

/** The SSE payloads of a stream, without the final [DONE]. */
function chatFrames(p: ChatPlan): string[] {
  const { id, created } = ids();
  const frame = (choices: unknown[], extra: object = {}): string =>
    JSON.stringify({ id, object: 'chat.completion.chunk', created, model: p.model, choices, ...extra });
  const frames = [frame([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])];
  if (p.toolCall) {
    // As OpenAI streams a call: id, type and name first, then the arguments in pieces.
    const { id: callId, type, function: fn } = p.toolCall;
    frames.push(frame([{ index: 0, delta: { tool_calls: [{ index: 0, id: callId, type, function: { name: fn.name, arguments: '' } }] }, finish_reason: null }]));
    for (const piece of split(fn.arguments, Math.max(1, Math.min(p.chunks, fn.arguments.length)))) {
      frames.push(frame([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, finish_reason: null }]));
    }
    frames.push(frame([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]));
    if (p.includeUsage) frames.push(frame([], { usage: usage(p) }));
    return frames;
  }
  const parts = split(p.content, Math.max(1, p.chunks));
  parts.forEach((text, i) => {
    const last = i === parts.length - 1;
    frames.push(frame([{ index: 0, delta: { content: text }, finish_reason: last ? 'stop' : null }]));
  });
  if (p.includeUsage) frames.push(frame([], { usage: usage(p) }));
  return frames;
}

export async function streamChat(ex: SimCall, p: ChatPlan): Promise<void> {
  if (ex.gone) return;
  ex.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  ex.res.flushHeaders();
  const frames = chatFrames(p);
  const limit = p.cut ? Math.min(p.cut.after, frames.length) : frames.length;
  for (let i = 0; i < limit; i++) {
    if (i > 0) await ex.sleep(p.intervalMs);
    if (ex.gone) return;
    await ex.write(`data: ${frames[i]}\n\n`);
  }
  if (ex.gone) return;
  if (p.cut?.mode === 'die_mid_event') {
    const next = `data: ${frames[limit] ?? frames[0]}\n\n`;
    await ex.write(next.slice(0, Math.floor(next.length / 2)));
  }
  if (p.cut) return cutShort(ex, p.cut);
  p.onDone();
  ex.res.end('data: [DONE]\n\n');
}

export async function replyChat(ex: SimCall, p: ChatPlan): Promise<void> {
  // A non-streamed answer still takes the decode time, so it holds its slot as long as a stream would.
  await ex.sleep(p.intervalMs * p.chunks);
  const { id, created } = ids();
  const body = {
    id,
    object: 'chat.completion',
    created,
    model: p.model,
    choices: [
      p.toolCall
        ? { index: 0, message: { role: 'assistant', content: null, tool_calls: [p.toolCall] }, logprobs: null, finish_reason: 'tool_calls' }
        : { index: 0, message: { role: 'assistant', content: p.content }, logprobs: null, finish_reason: 'stop' },
    ],
    usage: usage(p),
  };
  return finishJson(ex, body, p.cut, p.onDone);
}

/** Sends a JSON 200, or only its first half when cut short. */
export async function finishJson(ex: SimCall, body: unknown, cut: Cut | null, onDone: () => void): Promise<void> {
  if (ex.gone) return;
  const text = JSON.stringify(body);
  ex.res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  if (!cut) {
    onDone();
    ex.res.end(text);
    return;
  }
  await ex.write(text.slice(0, Math.floor(text.length / 2)));
  if (!ex.gone) await cutShort(ex, cut);
}

/**
 * Headers, `head`, then filler until the client goes away (bounded at `maxBytes` all the same),
 * each piece after `trickleMs` when set, else as fast as the client reads.
 */
export async function sendEndless(ex: SimCall, status: number, contentType: string, head: string, trickleMs = 0, maxBytes = 1024 * 1024 * 1024): Promise<void> {
  if (ex.gone) return;
  ex.res.writeHead(status, { 'content-type': contentType });
  ex.res.flushHeaders();
  await ex.write(head);
  const filler = trickleMs > 0 ? 'x' : 'x'.repeat(16 * 1024);
  for (let sent = 0; sent < maxBytes && !ex.gone; sent += filler.length) {
    if (trickleMs > 0) await ex.sleep(trickleMs);
    await ex.write(filler);
  }
  if (!ex.gone) ex.res.end();
}

async function cutShort(ex: SimCall, cut: Cut): Promise<void> {
  if (cut.mode === 'die' || cut.mode === 'die_mid_event') ex.drop(false);
  else await ex.untilGone();
}

/** Deterministic unit vector of 8 dimensions derived from the text (FNV-1a seeded LCG). */
export function embed(text: string): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  const v: number[] = [];
  for (let i = 0; i < 8; i++) {
    h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
    v.push(h / 0x80000000 - 1);
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Number((x / norm).toFixed(6)));
}
