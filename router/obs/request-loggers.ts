// One request's loggers: children of the router's loggers (obs/logs.ts) that carry the request's
// id on every line they write, so a line about a request can be found by the id the client saw
// in x-request-id. A child is made the first time the request logs to that file: most requests
// log nothing but their decision line (written by the record's sink, not here), and pino's
// child() costs a few microseconds that the request path need not pay.
import type { Logger } from 'pino';
import type { RouterLogs } from './logs.ts';

export class RequestLoggers {
  readonly #logs: Pick<RouterLogs, 'failures' | 'validation' | 'service'>;
  readonly #bindings: { request_id: string };
  #failures: Logger | undefined;
  #validation: Logger | undefined;
  #service: Logger | undefined;

  constructor(logs: Pick<RouterLogs, 'failures' | 'validation' | 'service'>, requestId: string) {
    this.#logs = logs;
    this.#bindings = { request_id: requestId };
  }

  /** upstream-failures.jsonl */
  get failures(): Logger {
    return (this.#failures ??= this.#logs.failures.child(this.#bindings));
  }

  /** structured-validation.jsonl */
  get validation(): Logger {
    return (this.#validation ??= this.#logs.validation.child(this.#bindings));
  }

  /** The service log (stdout). */
  get service(): Logger {
    return (this.#service ??= this.#logs.service.child(this.#bindings));
  }
}
