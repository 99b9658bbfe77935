// The key check every /v1/* request passes before any routing work: the data-plane dispatcher
// calls keyGate for each such path, so an endpoint added to its table is covered without doing
// anything. A handler that reads a body then calls KeyService.checkModel (model allowlist and
// token reservation) and settles through recordOutcome (router/http/request-scope.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import { requestIdOf, sendError } from './respond.ts';
import type { KeyGrant, KeyService } from '../keys/service.ts';
import { KeyRefusal } from '../keys/service.ts';

const grants = new WeakMap<IncomingMessage, KeyGrant>();

/** The grant the gate attached to this request, if a key was presented (or required). */
export function grantOf(req: IncomingMessage): KeyGrant | undefined {
  return grants.get(req);
}

/**
 * true: the request may go on (a grant is attached when a key was used); false: it was refused
 * and answered in the endpoint's error envelope. A promise of either with a shared limit store.
 */
export function keyGate(req: IncomingMessage, res: ServerResponse, path: string, keys: KeyService): boolean | Promise<boolean> {
  let grant: KeyGrant | null | Promise<KeyGrant>;
  try {
    grant = keys.authenticate(req.headers, path, Date.now());
  } catch (err) {
    return refuse(req, res, keys, err);
  }
  if (grant instanceof Promise) {
    return grant.then(
      (g) => attach(req, res, keys, g),
      (err: unknown) => refuse(req, res, keys, err),
    );
  }
  return grant === null ? true : attach(req, res, keys, grant);
}

function attach(req: IncomingMessage, res: ServerResponse, keys: KeyService, grant: KeyGrant): true {
  grants.set(req, grant);
  new GrantRelease(res, keys, grant);
  return true;
}

/** Gives the grant's in-flight place back when the response closes, however it ends. */
class GrantRelease {
  readonly #res: ServerResponse;
  readonly #keys: KeyService;
  readonly #grant: KeyGrant;

  constructor(res: ServerResponse, keys: KeyService, grant: KeyGrant) {
    this.#res = res;
    this.#keys = keys;
    this.#grant = grant;
    res.once('close', this.onClose.bind(this));
  }

  onClose(): void {
    this.#keys.closed(this.#grant, this.#res.writableFinished ? this.#res.statusCode : 499);
  }
}

function refuse(req: IncomingMessage, res: ServerResponse, keys: KeyService, err: unknown): false {
  if (err instanceof KeyRefusal) keys.refused(err);
  const headers: Record<string, string> = { 'x-request-id': requestIdOf(req) };
  if (err instanceof RouterError && err.code === 'invalid_api_key') headers['www-authenticate'] = 'Bearer realm="homelab-router"';
  // In the endpoint's envelope (Anthropic's for /v1/messages*): sendError picks it from the path.
  sendError(res, err, headers);
  return false;
}
