// Abort signals for the request path: one for "the client went away" and one for "the client
// went away or the request deadline passed" (disarmable once a stream is committed).
//
// Why not AbortController, AbortSignal.timeout and AbortSignal.any: on Node 20 the pair
// any([client, timeout(ms)]) costs ~25-40 µs per request on the bench machine, and stays in
// memory until the timeout fires (100 000 pairs held ~490 MB after a full GC), so memory grew
// with requests per second × request_timeout_ms.
// Every AbortSignal is also built with a prototype swap that costs a few µs, and undici then
// adds and removes EventTarget listeners on it. undici (and Admission) also accept an
// EventEmitter with `aborted` and `reason` that emits 'abort', which costs a fraction of that;
// these are such emitters, and a deadline's timer is cleared as soon as the request ends.
// A deadline is a child of the client signal: aborting the client aborts it.
import { EventEmitter } from 'node:events';

export class Abortable extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  #children: Abortable[] | null = null;

  abort(reason: unknown = new DOMException('This operation was aborted', 'AbortError')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const children = this.#children;
    this.#children = null;
    if (children) for (const child of children) child.abort(reason);
    this.emit('abort');
  }

  /** Aborts `child` whenever this aborts (at once if it already has). */
  link(child: Abortable): void {
    if (this.aborted) child.abort(this.reason);
    else (this.#children ??= []).push(child);
  }

  unlink(child: Abortable): void {
    const i = this.#children?.indexOf(child) ?? -1;
    if (i !== -1) this.#children!.splice(i, 1);
  }
}

/** Aborts when `client` does or when `deadline` (epoch ms) passes, whichever is first. */
export class DeadlineSignal extends Abortable {
  readonly #client: Abortable;
  #timer: NodeJS.Timeout | undefined;
  #timedOut = false;

  constructor(client: Abortable, deadline: number) {
    super();
    this.#client = client;
    client.link(this);
    if (!this.aborted) this.#timer = setTimeout(expire, Math.max(1, deadline - Date.now()), this);
  }

  /** True once the deadline (not the client) aborted this signal. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** The deadline no longer applies; the client leaving still aborts. */
  disarm(): void {
    clearTimeout(this.#timer);
  }

  /** Stops listening to both; call once the request no longer needs the signal. */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#client.unlink(this);
  }

  /** @internal the timer's callback */
  expire(): void {
    if (this.aborted) return;
    this.#timedOut = true;
    this.abort(new DOMException('request deadline passed', 'TimeoutError'));
  }
}

function expire(d: DeadlineSignal): void {
  d.expire();
}
