// Shared pieces of the fault-tolerance suites (capacity, failover, streaming faults, fail
// closed): a lab per test, requests that occupy upstream slots until the test lets them go,
// SSE parsing, reading the async log files without sleeping, and the "nothing leaked" check.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import OpenAI from 'openai';
import { LOG_FILES } from '../../router/obs/logs.ts';
import { leftovers, postJson, readJsonLines, startLab, type Lab, type LabOptions } from './lab.ts';
import { pollUntil } from './poll.ts';

export { leftovers, postJson, readJsonLines, type Lab };

/** A lab that is closed when the test ends, whatever the outcome. */
export async function labFor(t: TestContext, opts: LabOptions = {}): Promise<Lab> {
  const lab = await startLab(opts);
  t.after(() => lab.close());
  return lab;
}

/** The official SDK pointed at the router; the router is the only retry loop. */
export function sdk(lab: Lab): OpenAI {
  return new OpenAI({ baseURL: lab.url, apiKey: 'x', maxRetries: 0 });
}

/** Auto-routed traffic the classifier sends to the coding bucket (ubuntu-6000 first). */
export type ChatBody = OpenAI.ChatCompletionCreateParamsNonStreaming;

export function coding(text = 'Refactor this FastAPI endpoint and add pytest tests', extra: Record<string, unknown> = {}): ChatBody {
  return { model: 'homelab/auto', messages: [{ role: 'user', content: text }], ...extra } as ChatBody;
}

/** A request pinned by model alias. */
export function pinned(model: string, text = 'hello', extra: Record<string, unknown> = {}): ChatBody {
  return { model, messages: [{ role: 'user', content: text }], ...extra } as ChatBody;
}

export function chat(lab: Lab, body: unknown, headers: Record<string, string> = {}): ReturnType<typeof postJson> {
  return postJson(`${lab.url}/chat/completions`, body, headers);
}

/** A raw fetch of /chat/completions, for tests that read headers, stream by hand or abort. */
export function send(lab: Lab, body: unknown, init: { signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<Response> {
  return fetch(`${lab.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: JSON.stringify(body),
    signal: init.signal ?? null,
  });
}

/** Waits (bounded) until every route's in-flight and queued counts are zero, then asserts it. */
export async function assertSettled(lab: Lab): Promise<void> {
  await pollUntil('in-flight and queued to return to zero', () => (Object.keys(leftovers(lab)).length === 0 ? true : undefined), { tries: 200, everyMs: 10 }).catch(() => undefined);
  assert.deepEqual(leftovers(lab), {});
  for (const r of lab.svc.states.all()) {
    assert.ok(r.admission.inFlight >= 0 && r.admission.queued >= 0, `${r.name}: counters went negative`);
  }
}

/** Bounded wait for a condition on live state (a queue filling, a socket closing). */
export function until(what: string, cond: () => boolean, tries = 300): Promise<true> {
  return pollUntil(what, () => (cond() ? true : undefined), { tries, everyMs: 10 });
}

export type LogName = keyof typeof LOG_FILES;

/**
 * Every line of one log written so far. The files are written asynchronously, so a marker
 * line goes through the same logger and the file is polled (bounded) until the marker is
 * there: everything logged before it is then on disk too, which makes "no line was written"
 * assertions sound without sleeping.
 */
export async function logLines(lab: Lab, name: LogName): Promise<any[]> {
  const marker = randomUUID();
  lab.svc.logs[name].info({ test_marker: marker });
  const path = join(lab.logDir, LOG_FILES[name]);
  return pollUntil(`${LOG_FILES[name]} to be written`, () => {
    lab.svc.logs.flush();
    const lines = readJsonLines(path);
    const at = lines.findIndex((l) => l.test_marker === marker);
    return at === -1 ? undefined : lines.slice(0, at).filter((l) => l.test_marker === undefined);
  }, { tries: 200, everyMs: 10 });
}

/** Lines of upstream-failures.jsonl about requests, without the route state changes logged beside them. */
export function requestFailures(lines: any[]): any[] {
  return lines.filter((l) => l.event !== 'route_state');
}

/** The route state changes (healthy, down, busy, loading) of upstream-failures.jsonl lines. */
export function routeChanges(lines: any[]): any[] {
  return lines.filter((l) => l.event === 'route_state');
}

export interface SseEvent {
  event: string | null;
  data: string;
}

/** SSE events of a body, in order (`event:` is null for plain data events). */
export function sseEvents(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === '') continue;
    let event: string | null = null;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    out.push({ event, data: data.join('\n') });
  }
  return out;
}

/** Reads a body to its end or until it breaks; what arrived and whether it ended cleanly. */
export async function readToEnd(res: Response): Promise<{ text: string; clean: boolean }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text: text + decoder.decode(), clean: true };
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return { text, clean: false };
  }
}

/** Reads until `n` complete SSE events have arrived, then stops reading (the body stays open). */
export async function readEvents(res: Response, n: number): Promise<SseEvent[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (let i = 0; i < 10_000; i++) {
    const { done, value } = await reader.read();
    if (value) text += decoder.decode(value, { stream: true });
    const complete = text.slice(0, text.lastIndexOf('\n\n') + 2);
    const events = sseEvents(complete);
    if (events.length >= n || done) {
      reader.releaseLock();
      return events;
    }
  }
  throw new Error(`fewer than ${n} events arrived`);
}

/** The assistant text of the content deltas of an SSE body. */
export function streamedContent(events: SseEvent[]): string {
  return events
    .filter((e) => e.event === null && e.data !== '[DONE]')
    .map((e) => (JSON.parse(e.data) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '')
    .join('');
}

/**
 * Requests parked inside an upstream: each is answered with a `hang` fault, so it holds one
 * router slot (and one upstream generation) until the test aborts its client.
 */
export interface Holders {
  /** Aborts the i-th holder's client (the router must then free its slot and close its socket). */
  release(i: number): void;
  releaseAll(): void;
  /** Every holder's fetch, settled (they end aborted). */
  done: Promise<unknown>;
}

export async function hold(lab: Lab, route: string, n: number, body: unknown, headers: Record<string, string> = {}): Promise<Holders> {
  const sim = lab.sims[route]!;
  const target = sim.received.length + n;
  sim.pushFault(...Array.from({ length: n }, () => ({ kind: 'hang' as const })));
  const controllers = Array.from({ length: n }, () => new AbortController());
  const fetches = controllers.map((c) => send(lab, body, { signal: c.signal, headers }).then(readToEnd, () => null));
  await sim.waitForRequests(target);
  return {
    release: (i) => controllers[i]!.abort(),
    releaseAll: () => controllers.forEach((c) => c.abort()),
    done: Promise.allSettled(fetches),
  };
}

/** The parsed error envelope of a router error, with its status and Retry-After. */
export function errorOf(r: { status: number; headers: Headers; json: any }): { status: number; code: string; message: string; retryAfter: string | null } {
  return { status: r.status, code: r.json?.error?.code, message: r.json?.error?.message ?? '', retryAfter: r.headers.get('retry-after') };
}
