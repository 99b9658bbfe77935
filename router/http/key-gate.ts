// The key check every /v1/* request passes before any routing work: the data-plane dispatcher
// calls keyGate for each such path, so an endpoint added to its table is covered without doing
// anything. A handler that reads a body then calls KeyService.checkModel (model allowlist and
// token reservation) and settles through recordOutcome (router/http/request-scope.ts).
//
// The web UI's playground is the one caller without a key: a request that presents no key but
// comes from a signed-in UI page (the session cookie, the UI's header and this router's own
// origin, the same proof the admin API asks of the UI's changes) passes as that operator, with
// no key limits, and is logged with the client "ui:<subject>". The cookie alone does not pass.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import { requestIdOf, sendError } from './respond.ts';
import type { KeyGrant, KeyService } from '../keys/service.ts';
import { KeyRefusal } from '../keys/service.ts';
import { presentedKey } from '../keys/secret.ts';
import { ownPageSession, sessionClient, UI_CSRF_HEADER, type UiSessions } from '../keys/sessions.ts';

const grants = new WeakMap<IncomingMessage, KeyGrant>();
const operators = new WeakMap<IncomingMessage, string>();

/** The grant the gate attached to this request, if a key was presented (or required). */
export function grantOf(req: IncomingMessage): KeyGrant | undefined {
  return grants.get(req);
}

/** The request log's client of a request a signed-in UI page made without a key ("ui:admin"). */
export function operatorOf(req: IncomingMessage): string | undefined {
  return operators.get(req);
}

/**
 * true: the request may go on (a grant is attached when a key was used); false: it was refused
 * and answered in the endpoint's error envelope. A promise of either with a shared limit store.
 */
export function keyGate(req: IncomingMessage, res: ServerResponse, path: string, keys: KeyService, sessions?: UiSessions): boolean | Promise<boolean> {
  // Only a request carrying the UI's header pays for the cookie lookup.
  if (sessions !== undefined && req.headers[UI_CSRF_HEADER] !== undefined && presentedKey(req.headers) === undefined) {
    const s = ownPageSession(req, sessions);
    if (s !== undefined) {
      operators.set(req, sessionClient(s));
      return true;
    }
  }
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
