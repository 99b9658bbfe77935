// `homelab-router requests` and `homelab-router usage`: the request log of a running router
// (GET /admin/api/requests and /admin/api/analytics) as readable tables, or JSON.
import { parseArgs } from 'node:util';
import { adminFetch, formatTable } from './admin-client.ts';

export const REQUESTS_USAGE = `usage: homelab-router requests [--since 1h] [--route R] [--bucket B] [--status 5xx] [--client C] [--model M] [--limit N] [--json] [--url URL]

  Newest first. --since: 30m, 1h, 24h, 7d (or an ISO time); --status: 200, 4xx, 5xx; --limit: 1 to 500 (50).`;

export const USAGE_USAGE = `usage: homelab-router usage [--range 7d] [--by client] [--json] [--url URL]

  --range: 1h, 24h, 7d, 30d (24h); --by: route, bucket, client, model, status (route).
  Cost-equivalent is what the same tokens would cost on the reference cloud model (pricing.reference);
  "unpriced" where no price is known.`;

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean' }>, usage: string): { values: Record<string, string | boolean | undefined> } | number {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...options, json: { type: 'boolean' }, url: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`);
    return { values };
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
}

const DURATION = /^([0-9]+)(m|h|d)$/;

/** "1h" → now minus an hour; an ISO time as given. */
export function sinceToMs(since: string, now = Date.now()): number | null {
  const m = DURATION.exec(since);
  if (m) return now - Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  const t = Date.parse(since);
  return Number.isNaN(t) ? null : t;
}

export async function requestsCommand(args: string[]): Promise<number> {
  const parsed = parse(args, { since: { type: 'string' }, route: { type: 'string' }, bucket: { type: 'string' }, status: { type: 'string' }, client: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' } }, REQUESTS_USAGE);
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values;
  const query = new URLSearchParams();
  if (typeof v.since === 'string') {
    const from = sinceToMs(v.since);
    if (from === null) {
      console.error(`--since: "${v.since}" is neither a duration (30m, 1h, 7d) nor an ISO time\n\n${REQUESTS_USAGE}`);
      return 2;
    }
    query.set('from', String(from));
  }
  for (const k of ['route', 'bucket', 'status', 'client', 'model', 'limit'] as const) if (typeof v[k] === 'string') query.set(k, v[k] as string);
  const got = await adminFetch(`/admin/api/requests${query.size ? '?' + query.toString() : ''}`, { url: v.url as string | undefined });
  if (!got.ok) return got.code;
  if (v.json) {
    console.log(JSON.stringify(got.body, null, 2));
    return 0;
  }
  const rows = got.body.requests as Array<Record<string, any>>;
  if (rows.length === 0) {
    console.log('no requests match');
    return 0;
  }
  const cells = rows.map((r) => [
    String(r.ts).replace('T', ' ').slice(0, 19),
    String(r.status) + (r.error_code ? ` ${r.error_code}` : ''),
    r.endpoint,
    r.route ?? '-',
    r.bucket ?? '-',
    r.client,
    r.model ?? '-',
    `${r.duration_ms} ms`,
    r.prompt_tokens === null ? '-' : `${r.prompt_tokens}/${r.completion_tokens ?? 0}`,
    usd(r.cost_equivalent_usd),
    r.fallback_path || '-',
    r.request_id,
  ]);
  console.log(formatTable(['TIME (UTC)', 'STATUS', 'ENDPOINT', 'ROUTE', 'BUCKET', 'CLIENT', 'MODEL', 'DURATION', 'TOKENS IN/OUT', 'COST-EQ', 'PATH', 'REQUEST ID'], cells, new Set([7, 8, 9])));
  if (got.body.next_cursor) console.log(`(more: narrow with --since or the filters, or raise --limit up to 500)`);
  return 0;
}

export async function usageCommand(args: string[]): Promise<number> {
  const parsed = parse(args, { range: { type: 'string' }, by: { type: 'string' } }, USAGE_USAGE);
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values;
  const range = (v.range as string | undefined) ?? '24h';
  const by = (v.by as string | undefined) ?? 'route';
  if (!['1h', '24h', '7d', '30d'].includes(range) || !['route', 'bucket', 'client', 'model', 'status'].includes(by)) {
    console.error(`${!['1h', '24h', '7d', '30d'].includes(range) ? `--range: "${range}"` : `--by: "${by}"`} is not one of the choices\n\n${USAGE_USAGE}`);
    return 2;
  }
  const got = await adminFetch(`/admin/api/analytics?range=${range}&by=${by}`, { url: v.url as string | undefined });
  if (!got.ok) return got.code;
  if (v.json) {
    console.log(JSON.stringify(got.body, null, 2));
    return 0;
  }
  const line = (key: string, t: Record<string, any>) => [
    key,
    String(t.requests),
    String(t.errors),
    t.requests ? `${((100 * t.errors) / t.requests).toFixed(1)}%` : '-',
    String(t.prompt_tokens),
    String(t.completion_tokens),
    t.p50_ms === null ? '-' : `${t.p50_ms} ms`,
    t.p95_ms === null ? '-' : `${t.p95_ms} ms`,
    usd(t.cost_equivalent_usd) + (t.cost_equivalent_usd !== null && t.unpriced_requests > 0 ? ` (+${t.unpriced_requests} unpriced)` : ''),
  ];
  const series = got.body.series as Array<{ key: string; totals: Record<string, any> }>;
  console.log(`${range} by ${by}, ${got.body.from.slice(0, 16).replace('T', ' ')} to ${got.body.to.slice(0, 16).replace('T', ' ')} UTC`);
  if (series.length === 0) {
    console.log('no requests in this range');
    return 0;
  }
  const cells = [...series.map((s) => line(s.key, s.totals)), line('TOTAL', got.body.totals)];
  console.log(formatTable([by.toUpperCase(), 'REQUESTS', 'ERRORS', 'ERR%', 'PROMPT TOK', 'COMPL TOK', 'P50', 'P95', 'COST-EQUIVALENT'], cells, new Set([1, 2, 3, 4, 5, 6, 7])));
  return 0;
}

function usd(v: number | null): string {
  if (v === null) return 'unpriced';
  return v >= 100 ? `$${v.toFixed(0)}` : v >= 1 ? `$${v.toFixed(2)}` : `$${v.toFixed(4)}`;
}
