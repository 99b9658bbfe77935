// request_log.store_payloads: keeps the response bytes as they are relayed to the client, up to
// the stored cap (the worker cuts again, exactly, and marks the cut).
export class ResponseCapture {
  readonly #max: number;
  readonly #parts: Buffer[] = [];
  #bytes = 0;
  /** Passed to the proxy as the forward request's tap. */
  readonly tap = this.push.bind(this);

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  push(chunk: Buffer): void {
    if (this.#bytes > this.#max) return;
    this.#parts.push(chunk);
    this.#bytes += chunk.length;
  }

  text(): string | null {
    return this.#parts.length === 0 ? null : Buffer.concat(this.#parts).toString('utf8');
  }
}

/** Whether this request's bodies are to be stored. */
export function storesPayloads(policy: { request_log: { enabled: boolean; store_payloads: boolean } }, hasLog: boolean): boolean {
  return hasLog && policy.request_log.enabled && policy.request_log.store_payloads;
}
