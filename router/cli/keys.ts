// `homelab-router keys create|list|rotate|revoke` against a running router's /admin/keys.
import { adminBase, adminCall } from './admin-client.ts';
import type { KeyView } from '../keys/service.ts';

export const KEYS_USAGE = `usage: homelab-router keys create NAME [--models M1,M2] [--endpoints E1,E2] [--rpm N] [--max-in-flight N] [--monthly-tokens N] [--expires ISO] [--admin]
       homelab-router keys list [--json]
       homelab-router keys rotate NAME
       homelab-router keys revoke NAME`;

export interface KeysFlags {
  url: string | undefined;
  json: boolean;
  models?: string | undefined;
  endpoints?: string | undefined;
  rpm?: string | undefined;
  'max-in-flight'?: string | undefined;
  'monthly-tokens'?: string | undefined;
  expires?: string | undefined;
  admin?: boolean | undefined;
}


function positiveInt(v: string | undefined): number | undefined | null {
  if (v === undefined) return undefined;
  return /^[1-9][0-9]*$/.test(v) ? Number(v) : null;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

export async function keysCommand(args: string[], flags: KeysFlags): Promise<number> {
  const [verb, name] = args;
  if (verb === 'list') return listKeys(flags);
  if ((verb !== 'create' && verb !== 'rotate' && verb !== 'revoke') || !name || args.length > 2) {
    console.error(KEYS_USAGE);
    return 2;
  }
  const base = adminBase(flags.url);
  if (base === null) return 2;
  if (verb === 'create') {
    const body: Record<string, unknown> = { name };
    for (const [flag, field] of [['rpm', 'rpm'], ['max-in-flight', 'max_in_flight'], ['monthly-tokens', 'monthly_tokens']] as const) {
      const n = positiveInt(flags[flag]);
      if (n === null) {
        console.error(`--${flag} must be a positive integer\n${KEYS_USAGE}`);
        return 2;
      }
      if (n !== undefined) body[field] = n;
    }
    if (flags.models !== undefined) body.models = list(flags.models);
    if (flags.endpoints !== undefined) body.endpoints = list(flags.endpoints);
    if (flags.expires !== undefined) body.expires_at = flags.expires;
    if (flags.admin) body.admin = true;
    const r = await adminCall(base, 'POST', '/admin/keys', body);
    if (!r.ok) return 1;
    if (flags.json) console.log(JSON.stringify(r.body, null, 2));
    else {
      console.log(`created key "${r.body.name}" (${r.body.id}). The key is shown this once; store it in the application's settings:\n`);
      console.log(r.body.key);
    }
    return 0;
  }
  const found = await adminCall(base, 'GET', '/admin/keys');
  if (!found.ok) return 1;
  const key = (found.body.keys as KeyView[]).find((k) => (k.name === name || k.id === name) && !k.revoked);
  if (!key) {
    console.error(`no live key named "${name}" (homelab-router keys list)`);
    return 1;
  }
  if (verb === 'rotate') {
    const r = await adminCall(base, 'POST', `/admin/keys/${encodeURIComponent(key.id)}/rotate`);
    if (!r.ok) return 1;
    if (flags.json) console.log(JSON.stringify(r.body, null, 2));
    else console.log(`rotated key "${key.name}" (${key.id}); the old key stops working now. New key, shown this once:\n\n${r.body.key}`);
    return 0;
  }
  const r = await adminCall(base, 'DELETE', `/admin/keys/${encodeURIComponent(key.id)}`);
  if (!r.ok) return 1;
  console.log(`revoked key "${key.name}" (${key.id})`);
  return 0;
}

async function listKeys(flags: KeysFlags): Promise<number> {
  const base = adminBase(flags.url);
  if (base === null) return 2;
  const r = await adminCall(base, 'GET', '/admin/keys');
  if (!r.ok) return 1;
  const keys = r.body.keys as KeyView[];
  if (flags.json) {
    console.log(JSON.stringify(r.body, null, 2));
    return 0;
  }
  const lim = (n: number | null) => (n === null ? '-' : String(n));
  const head = ['NAME', 'ID', 'PREFIX', 'STATE', 'MODELS', 'RPM', 'IN FLIGHT', 'TOKENS (MONTH)', 'REQUESTS', 'LAST USED'];
  const cells = keys.map((k) => [
    k.name,
    k.id,
    k.prefix,
    k.revoked ? 'revoked' : k.expires_at !== null && Date.parse(k.expires_at) <= Date.now() ? 'expired' : k.admin ? 'admin' : k.source === 'policy' ? 'policy' : 'active',
    k.models.join(','),
    lim(k.rpm),
    lim(k.max_in_flight),
    `${k.used_tokens_month}/${lim(k.monthly_tokens)}`,
    String(k.requests_month),
    k.last_used_at ?? '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  for (const row of [head, ...cells]) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  return 0;
}
