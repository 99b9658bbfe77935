// What every request meets before any endpoint (SPEC §4 "Browsers and foreign pages"):
// absolute-form targets rewritten to origin-form, `server.allowed_hosts` (421), the Origin rule
// (403 unless the router's own or in `server.cors_origins`; CORS headers and preflight for
// listed ones) and the content-type rule for POSTs (415). Decisions are pure functions over the
// request line and headers; only `admitAtEdge` writes. Requests without Origin and with the
// ordinary content-type (every SDK, curl with -H) pay two header lookups and a string compare.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RouterError } from '../errors.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import { requestIdOf, sendError } from './respond.ts';

export interface EdgeRules {
  /** Lower-cased `scheme://host[:port]` origins, or null when none is listed. */
  readonly origins: ReadonlySet<string> | null;
  readonly anyOrigin: boolean;
  /** Lower-cased Host values (host or host:port), or null for any. */
  readonly hosts: ReadonlySet<string> | null;
}

const rulesByPolicy = new WeakMap<CompiledPolicy, EdgeRules>();

export function edgeRules(policy: CompiledPolicy): EdgeRules {
  let rules = rulesByPolicy.get(policy);
  if (!rules) {
    const s = policy.doc.server;
    const origins = (s.cors_origins ?? []).map((o) => o.toLowerCase().replace(/\/$/, ''));
    const hosts = (s.allowed_hosts ?? []).map((h) => h.toLowerCase());
    rules = {
      origins: origins.length > 0 ? new Set(origins) : null,
      anyOrigin: origins.includes('*'),
      hosts: hosts.length > 0 ? new Set(hosts) : null,
    };
    rulesByPolicy.set(policy, rules);
  }
  return rules;
}

/** `http://host:port/v1/x?y` → `/v1/x?y` and its authority; null for an origin-form target. */
export function absoluteForm(url: string): { path: string; authority: string } | null {
  const m = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(url);
  if (!m) return null;
  const rest = m[2]!;
  return { authority: m[1]!.replace(/^[^@]*@/, ''), path: rest === '' ? '/' : rest.startsWith('?') ? '/' + rest : rest };
}

/** Host (or host:port) without the port, lower-cased; IPv6 keeps its brackets. */
function hostName(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

export function hostAllowed(rules: EdgeRules, host: string | undefined): boolean {
  if (rules.hosts === null) return true;
  if (host === undefined) return false;
  const h = host.toLowerCase();
  return rules.hosts.has(h) || rules.hosts.has(hostName(h));
}

export type OriginVerdict = 'none' | 'own' | 'listed' | 'foreign';

/** Whose page sent this: nobody's (no Origin), the router's own (same host:port), a listed one, or a foreign one. */
export function originVerdict(rules: EdgeRules, origin: string | undefined, host: string | undefined): OriginVerdict {
  if (origin === undefined) return 'none';
  const o = origin.toLowerCase();
  if (host !== undefined) {
    const sep = o.indexOf('://');
    if (sep !== -1 && (o.startsWith('http://') || o.startsWith('https://')) && o.slice(sep + 3) === host.toLowerCase()) return 'own';
  }
  if (rules.anyOrigin || rules.origins?.has(o)) return 'listed';
  return 'foreign';
}

/** application/json, with or without parameters (`; charset=utf-8`). */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value === 'application/json') return true;
  const semi = value.indexOf(';');
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Why a POST's body is refused before it is read, or null. Data-plane POSTs (`/v1/*`) must say
 * application/json; admin POSTs only when they carry a body.
 */
export function bodyTypeProblem(req: IncomingMessage, dataPlane: boolean): RouterError | null {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    return new RouterError('unsupported_media_type', `content-encoding "${encoding}" is not supported: send the body uncompressed.`);
  }
  const type = req.headers['content-type'];
  if (isJsonContentType(type) || (!dataPlane && !hasBody(req))) return null;
  return new RouterError('unsupported_media_type', `${type === undefined ? 'No content-type was sent' : `content-type "${type}" is not accepted`}: send the JSON body with the header "content-type: application/json".`);
}

const EXPOSED = 'x-homelab-route, x-homelab-bucket, x-homelab-reason, x-homelab-fallback-path, x-request-id, retry-after';
const METHODS = 'GET, HEAD, POST, DELETE, OPTIONS';
const PREFLIGHT_MAX_AGE_S = '600';

/** Told of each refusal (for the request metrics). */
export type EdgeRefusal = (err: RouterError) => void;

/**
 * Applies the edge rules. Returns the path to route on, or null when the request was answered
 * here (refused, or a preflight).
 */
export function admitAtEdge(req: IncomingMessage, res: ServerResponse, policy: CompiledPolicy, onRefused?: EdgeRefusal): string | null {
  let url = req.url ?? '/';
  let host = req.headers.host;
  if (url.charCodeAt(0) !== 47 /* '/' */) {
    const abs = absoluteForm(url);
    if (abs) {
      url = abs.path;
      req.url = url;
      host = abs.authority;
    }
  }
  const rules = edgeRules(policy);
  if (!hostAllowed(rules, host)) {
    refuse(req, res, new RouterError('host_not_allowed', `Host "${host ?? ''}" is not served here (server.allowed_hosts).`), onRefused, { connection: 'close' });
    return null;
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const verdict = originVerdict(rules, origin, host);
    if (verdict === 'foreign') {
      refuse(req, res, new RouterError('origin_not_allowed', `Requests from pages at ${origin} are refused; an operator can allow that origin in server.cors_origins.`), onRefused, { vary: 'Origin' });
      return null;
    }
    if (verdict === 'listed') {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
        const asked = req.headers['access-control-request-headers'];
        res.writeHead(204, {
          'access-control-allow-methods': METHODS,
          ...(asked ? { 'access-control-allow-headers': asked } : {}),
          'access-control-max-age': PREFLIGHT_MAX_AGE_S,
          'content-length': '0',
        });
        res.end();
        return null;
      }
      res.setHeader('access-control-expose-headers', EXPOSED);
    }
  }
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  // The data plane and the admin API take JSON; other listeners' paths (the UI's) set their own rules.
  if (req.method === 'POST' && (path.startsWith('/v1/') || path.startsWith('/admin/'))) {
    const problem = bodyTypeProblem(req, path.charCodeAt(1) === 118 /* 'v' */);
    if (problem) {
      refuse(req, res, problem, onRefused);
      return null;
    }
  }
  return path;
}

function refuse(req: IncomingMessage, res: ServerResponse, err: RouterError, onRefused: EdgeRefusal | undefined, headers: Record<string, string> = {}): void {
  sendError(res, err, { 'x-request-id': requestIdOf(req), ...headers });
  onRefused?.(err);
}
