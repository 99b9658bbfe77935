// The key check every /v1/* request passes before any routing work: the data-plane dispatcher
// calls keyGate for each such path, so an endpoint added to its table is covered without doing
// anything. A handler that reads a body then calls KeyService.checkModel (model allowlist and
// token reservation) and settles through recordOutcome (router/http/exchange.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import { requestIdOf, sendError, sendJson } from '../http/respond.ts';
import type { KeyGrant, KeyService } from './service.ts';
import { KeyRefusal } from './service.ts';

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
    return refuse(req, res, path, keys, err);
  }
  if (grant instanceof Promise) {
    return grant.then(
      (g) => attach(req, res, keys, g),
      (err: unknown) => refuse(req, res, path, keys, err),
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

function refuse(req: IncomingMessage, res: ServerResponse, path: string, keys: KeyService, err: unknown): false {
  if (err instanceof KeyRefusal) keys.refused(err);
  const headers: Record<string, string> = { 'x-request-id': requestIdOf(req) };
  if (err instanceof RouterError && err.code === 'invalid_api_key') headers['www-authenticate'] = 'Bearer realm="homelab-router"';
  sendRefusal(res, path, err, headers);
  return false;
}

const ANTHROPIC_TYPES: Record<string, string> = {
  invalid_api_key: 'authentication_error',
  model_not_allowed: 'permission_error',
  rate_limited: 'rate_limit_error',
  budget_exceeded: 'rate_limit_error',
};

/** A key refusal in the envelope of the endpoint's protocol: Anthropic's for /v1/messages*, else OpenAI's. */
export function sendRefusal(res: ServerResponse, path: string, err: unknown, headers: Record<string, string>): void {
  if (err instanceof RouterError && err.code === 'budget_exceeded') headers['x-should-retry'] = 'false';
  if (path.startsWith('/v1/messages') && err instanceof RouterError) {
    if (err.retryAfterS !== undefined) headers['retry-after'] = String(err.retryAfterS);
    sendJson(res, err.status, { type: 'error', error: { type: ANTHROPIC_TYPES[err.code] ?? 'api_error', message: err.message } }, headers);
    return;
  }
  sendError(res, err, headers);
}
