// Calls to a running router's admin API for the CLI: drain / undrain / upstreams here, and the
// transport that `keys`, `requests` and `usage` use too.

interface Upstream {
  route: string;
  healthy: boolean;
  drained: boolean;
  busy_until: string | null;
  in_flight: number;
  queued: number;
  slots: number;
  queue: number;
  consecutive_failures: number;
  latency_ms: number | null;
  last_error: string | null;
  model: string;
}

/** The running router's base URL, or null (after saying why) when no admin token is set. */
export function adminBase(url: string | undefined): string | null {
  if (!process.env.HOMELAB_ROUTER_ADMIN_TOKEN) {
    console.error('HOMELAB_ROUTER_ADMIN_TOKEN is not set: export the token the router was started with.');
    return null;
  }
  return (url ?? process.env.HOMELAB_ROUTER_URL ?? 'http://127.0.0.1:4000').replace(/\/$/, '');
}

/** One admin API call; errors are printed and give ok: false. */
export async function adminCall(base: string, method: string, path: string, body?: unknown): Promise<{ ok: boolean; body: any }> {
  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${process.env.HOMELAB_ROUTER_ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? null : JSON.stringify(body),
    });
  } catch (err) {
    console.error(`cannot reach the router at ${base}: ${(err as Error).message}`);
    return { ok: false, body: null };
  }
  const parsed = (await res.json().catch(() => null)) as any;
  if (!res.ok) console.error(`${res.status}: ${parsed?.error?.message ?? res.statusText}`);
  return { ok: res.ok, body: parsed };
}

/** A call to a running router's admin API: its JSON body, or the exit code after saying why on stderr. */
export async function adminFetch(path: string, opts: { url: string | undefined; method?: string }): Promise<{ ok: true; body: any } | { ok: false; code: number }> {
  const base = adminBase(opts.url);
  if (base === null) return { ok: false, code: 2 };
  const r = await adminCall(base, opts.method ?? 'GET', path);
  return r.ok ? { ok: true, body: r.body } : { ok: false, code: 1 };
}

export async function adminCommand(command: 'drain' | 'undrain' | 'upstreams', route: string | undefined, opts: { url: string | undefined; json: boolean }): Promise<number> {
  if (command !== 'upstreams' && !route) {
    console.error(`usage: homelab-router ${command} <route>`);
    return 2;
  }
  const path = command === 'upstreams' ? '/admin/upstreams' : `/admin/${command}/${encodeURIComponent(route!)}`;
  const got = await adminFetch(path, { url: opts.url, method: command === 'upstreams' ? 'GET' : 'POST' });
  if (!got.ok) return got.code;
  const body = got.body;
  if (opts.json) {
    console.log(JSON.stringify(body, null, 2));
    return 0;
  }
  if (command !== 'upstreams') {
    console.log(`${body.route}: ${body.drained ? 'drained' : 'serving'} (in flight ${body.in_flight}, queued ${body.queued})`);
    return 0;
  }
  printTable(body.upstreams as Upstream[]);
  return 0;
}

function printTable(rows: Upstream[]): void {
  const head = ['ROUTE', 'STATE', 'IN FLIGHT', 'QUEUED', 'FAILS', 'LATENCY', 'MODEL', 'LAST ERROR'];
  const cells = rows.map((u) => [
    u.route,
    u.drained ? 'drained' : !u.healthy ? 'UNHEALTHY' : u.busy_until ? 'busy' : 'healthy',
    `${u.in_flight}/${u.slots}`,
    `${u.queued}/${u.queue}`,
    String(u.consecutive_failures),
    u.latency_ms === null ? '-' : `${u.latency_ms} ms`,
    u.model,
    (u.last_error ?? '').slice(0, 60),
  ]);
  console.log(formatTable(head, cells));
}

/** Columns padded to their widest cell, two spaces apart; `right` lists the right-aligned ones. */
export function formatTable(head: string[], cells: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [head, ...cells].map((row) => row.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}
