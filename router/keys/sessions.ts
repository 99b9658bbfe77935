// Web UI sign-in sessions: the admin token or an admin key is exchanged once for a random
// session id carried in an HttpOnly, SameSite=Strict cookie (a key's session lasts only while
// the key is a valid admin key). The token itself never reaches the page. Sessions live in
// memory: a restart signs everyone out, which is the safe default for a single operator's lab.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE = 'hlr_session';
/** Header every cookie-authenticated mutation must carry: a cross-site form or image cannot set it. */
export const UI_CSRF_HEADER = 'x-homelab-ui';

export interface UiSession {
  id: string;
  subject: string;
  createdAt: number;
  expiresAt: number;
  /**
   * Asked on every use: false ends the session at once. A session opened with an admin key
   * lasts only while that key is valid (not revoked, not expired, still admin).
   */
  stillValid?: (() => boolean) | undefined;
}

export class UiSessions {
  readonly #byId = new Map<string, UiSession>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(opts: { ttlMs?: number; max?: number } = {}) {
    this.#ttlMs = opts.ttlMs ?? 12 * 3600_000;
    this.#max = opts.max ?? 256;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  create(subject: string, now = Date.now(), stillValid?: () => boolean): UiSession {
    this.#prune(now);
    // Bounded: the oldest session makes room (a Map iterates in insertion order).
    if (this.#byId.size >= this.#max) this.#byId.delete(this.#byId.keys().next().value as string);
    const s: UiSession = { id: randomBytes(32).toString('base64url'), subject, createdAt: now, expiresAt: now + this.#ttlMs, stillValid };
    this.#byId.set(s.id, s);
    return s;
  }

  /** The live session named by the request's cookie, or undefined. */
  fromRequest(req: IncomingMessage, now = Date.now()): UiSession | undefined {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (!id) return undefined;
    const s = this.#byId.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= now || s.stillValid?.() === false) {
      this.#byId.delete(id);
      return undefined;
    }
    return s;
  }

  revoke(id: string): void {
    this.#byId.delete(id);
  }

  #prune(now: number): void {
    for (const [id, s] of this.#byId) if (s.expiresAt <= now) this.#byId.delete(id);
  }
}

/**
 * The request was made by this router's own pages: it carries the UI header, and the Origin the
 * browser names (if any) is this host. A page elsewhere cannot pass: the browser sets Origin
 * itself, and sends a custom header across origins only after a CORS preflight, which the router
 * answers only for server.cors_origins (whose pages still name their own Origin, not this host).
 */
export function fromOwnPages(req: IncomingMessage): boolean {
  if (req.headers[UI_CSRF_HEADER] === undefined) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/**
 * The signed-in session behind a call the UI's own pages made (the cookie, the UI header, this
 * router's origin), or undefined. The cookie alone is not enough: the browser would send it with
 * a request another page forged.
 */
export function ownPageSession(req: IncomingMessage, sessions: UiSessions, now = Date.now()): UiSession | undefined {
  return fromOwnPages(req) ? sessions.fromRequest(req, now) : undefined;
}

/** The request log's `client` for a call made from a signed-in UI page ("ui:admin"). */
export function sessionClient(s: UiSession): string {
  return `ui:${s.subject}`;
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function sessionCookie(s: UiSession): string {
  return `${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor((s.expiresAt - s.createdAt) / 1000)}`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}
