// The checks a JSON Schema cannot express, and the read-only lookups the request path uses.
// Input: a document the schema accepted (defaults filled in). Output: errors, or a frozen
// CompiledPolicy. No I/O.
import { createHash } from 'node:crypto';
import { Classifier } from '../classify/classifier.ts';
import type { BucketConfig, Policy, RouteConfig } from './types.ts';

export const AUTO_MODEL = 'homelab/auto';

export interface CompiledPolicy {
  /** The policy document as validated (frozen). */
  readonly doc: Policy;
  /** sha256 of the canonical JSON of the policy (key order independent of the file). */
  readonly hash: string;
  readonly routeNames: readonly string[];
  readonly bucketNames: readonly string[];
  /** Alias or served model name → route. */
  readonly modelToRoute: ReadonlyMap<string, string>;
  readonly classifier: Classifier;
  route(name: string): RouteConfig;
  bucket(name: string): BucketConfig;
}

export function compilePolicy(policy: Policy): { policy?: CompiledPolicy; errors: string[] } {
  const errors = semanticErrors(policy);
  if (errors.length > 0) return { errors };
  deepFreeze(policy);
  const modelToRoute = new Map<string, string>();
  for (const [name, route] of Object.entries(policy.routes)) {
    modelToRoute.set(route.model, name);
    for (const alias of route.aliases ?? []) modelToRoute.set(alias, name);
  }
  const compiled: CompiledPolicy = {
    doc: policy,
    hash: policyHash(policy),
    routeNames: Object.keys(policy.routes),
    bucketNames: Object.keys(policy.buckets),
    modelToRoute,
    classifier: new Classifier(policy.buckets, policy.classifier.tie_break, policy.classifier.default_bucket, {
      lookbackBelow: policy.classifier.lookback_below,
      newTopic: policy.classifier.new_topic,
      deviceTools: policy.classifier.device_tools,
      chatTools: policy.classifier.chat_tools,
      scanChars: policy.classifier.scan_chars,
      parts: policy.classifier.parts,
      similarity: policy.classifier.similarity?.enabled ? policy.classifier.similarity : undefined,
      system: policy.classifier.system,
    }),
    route: (name) => policy.routes[name]!,
    bucket: (name) => policy.buckets[name]!,
  };
  return { policy: Object.freeze(compiled), errors: [] };
}

export function policyHash(policy: Policy): string {
  return 'sha256:' + createHash('sha256').update(canonicalJson(policy)).digest('hex');
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson((value as Record<string, unknown>)[k])).join(',') + '}';
  }
  return JSON.stringify(value);
}

export function semanticErrors(p: Policy): string[] {
  const errors: string[] = [];
  const routes = p.routes;
  const exists = (name: string) => Object.hasOwn(routes, name);
  const needRoute = (path: string, name: string | undefined) => {
    if (name !== undefined && !exists(name)) errors.push(`${path}: no route named "${name}"`);
    return name !== undefined && exists(name);
  };
  const needVision = (path: string, name: string | undefined) => {
    if (needRoute(path, name) && !routes[name!]!.vision) errors.push(`${path}: route "${name}" has no vision: true, so it cannot take images`);
  };

  // Models: every alias and served name names exactly one route.
  const owner = new Map<string, string>();
  for (const [name, route] of Object.entries(routes)) {
    const claims: Array<[string, string]> = [[`routes.${name}.model`, route.model]];
    (route.aliases ?? []).forEach((a, i) => claims.push([`routes.${name}.aliases[${i}]`, a]));
    for (const [path, model] of claims) {
      if (model === AUTO_MODEL) errors.push(`${path}: "${AUTO_MODEL}" is reserved for automatic routing`);
      const prev = owner.get(model);
      if (prev !== undefined && prev !== name) errors.push(`${path}: "${model}" is already used by route "${prev}"`);
      else owner.set(model, name);
    }
    if (route.timeout_ms >= p.server.request_timeout_ms) {
      errors.push(`routes.${name}.timeout_ms: ${route.timeout_ms} must be less than server.request_timeout_ms (${p.server.request_timeout_ms})`);
    }
    if (route.fallback !== 'terminal') {
      needRoute(`routes.${name}.fallback.busy`, route.fallback.busy);
      needVision(`routes.${name}.fallback.busy_image`, route.fallback.busy_image);
      needRoute(`routes.${name}.fallback.outage`, route.fallback.outage);
    }
    const rec = route.recovery;
    if (rec && rec.managed !== false) {
      if (rec.host !== undefined && !Object.hasOwn(p.hosts, rec.host)) errors.push(`routes.${name}.recovery.host: no host named "${rec.host}"`);
      if ((rec.restart || rec.cuda || rec.cuda_check) && rec.host === undefined) errors.push(`routes.${name}.recovery.host: is required when a recovery command is set`);
    }
  }
  errors.push(...cycleErrors(p));

  // Buckets.
  for (const [name, b] of Object.entries(p.buckets)) {
    needRoute(`buckets.${name}.route`, b.route);
    needRoute(`buckets.${name}.medium`, b.medium);
    needRoute(`buckets.${name}.large`, b.large);
    needVision(`buckets.${name}.image_route`, b.image_route);
    needRoute(`buckets.${name}.escalate_to`, b.escalate_to);
    if (b.fail_closed && b.escalate_to === undefined) errors.push(`buckets.${name}.escalate_to: is required when fail_closed is true`);
    if (b.on_code !== undefined && !Object.hasOwn(p.buckets, b.on_code)) errors.push(`buckets.${name}.on_code: no bucket named "${b.on_code}"`);
  }

  // Classifier.
  const c = p.classifier;
  const buckets = Object.keys(p.buckets);
  c.tie_break.forEach((b, i) => {
    if (!Object.hasOwn(p.buckets, b)) errors.push(`classifier.tie_break[${i}]: no bucket named "${b}"`);
  });
  const missing = buckets.filter((b) => !c.tie_break.includes(b));
  if (missing.length > 0) errors.push(`classifier.tie_break: must list every bucket; missing ${missing.map((b) => `"${b}"`).join(', ')}`);
  if (!Object.hasOwn(p.buckets, c.default_bucket)) errors.push(`classifier.default_bucket: no bucket named "${c.default_bucket}"`);
  if (Object.hasOwn(p.buckets, c.image_bucket)) {
    const vb = p.buckets[c.image_bucket]!;
    if (exists(vb.route) && !routes[vb.route]!.vision) errors.push(`buckets.${c.image_bucket}.route: the image bucket's route "${vb.route}" has no vision: true`);
  }
  if (p.health.ejection_max_s < p.health.ejection_base_s) errors.push(`health.ejection_max_s: must be at least health.ejection_base_s (${p.health.ejection_base_s})`);
  errors.push(...authErrors(p));
  // Cost-equivalent: each reference names a route or a served model.
  for (const key of Object.keys(p.pricing.reference)) {
    if (!exists(key) && !owner.has(key)) errors.push(`pricing.reference.${key}: no route or served model named "${key}"`);
  }
  if (p.size_tiers.medium >= p.size_tiers.large) errors.push(`size_tiers.large: must be greater than size_tiers.medium (${p.size_tiers.medium})`);
  return errors;
}

/** Static keys: unique names and hashes, dates that parse. */
function authErrors(p: Policy): string[] {
  const errors: string[] = [];
  const names = new Set<string>();
  const hashes = new Set<string>();
  p.auth.keys.forEach((k, i) => {
    if (names.has(k.name)) errors.push(`auth.keys[${i}].name: "${k.name}" is used by another key`);
    names.add(k.name);
    const hash = k.key_sha256.replace(/^sha256:/, '').toLowerCase();
    if (hashes.has(hash)) errors.push(`auth.keys[${i}].key_sha256: the same hash is listed twice`);
    hashes.add(hash);
    if (k.expires_at !== undefined && Number.isNaN(Date.parse(k.expires_at))) errors.push(`auth.keys[${i}].expires_at: "${k.expires_at}" is not an ISO 8601 date-time`);
  });
  return errors;
}

/** A chain of one kind (busy, busy_image, outage) must end at a terminal route or a 503, never loop. */
function cycleErrors(p: Policy): string[] {
  const errors: string[] = [];
  for (const kind of ['busy', 'busy_image', 'outage'] as const) {
    const reported = new Set<string>();
    for (const start of Object.keys(p.routes)) {
      const seen: string[] = [];
      let at: string | undefined = start;
      while (at !== undefined && Object.hasOwn(p.routes, at)) {
        if (seen.includes(at)) {
          const loop = [...seen.slice(seen.indexOf(at)), at];
          const key = [...loop].sort().join();
          if (!reported.has(key)) errors.push(`routes.${start}.fallback.${kind}: chain loops (${loop.join(' > ')}); it must end at a terminal route or nowhere (503)`);
          reported.add(key);
          break;
        }
        seen.push(at);
        const fb: RouteConfig['fallback'] = p.routes[at]!.fallback;
        at = fb === 'terminal' ? undefined : fb[kind];
      }
    }
  }
  return errors;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
