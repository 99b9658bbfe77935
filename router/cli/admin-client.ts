// drain / undrain / upstreams against a running router's admin API.

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
export async function adminFetch(base: string, method: string, path: string, body?: unknown): Promise<{ ok: boolean; body: any }> {
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

export async function adminCommand(command: 'drain' | 'undrain' | 'upstreams', route: string | undefined, opts: { url: string | undefined; json: boolean }): Promise<number> {
  const base = (opts.url ?? process.env.HOMELAB_ROUTER_URL ?? 'http://127.0.0.1:4000').replace(/\/$/, '');
  const token = process.env.HOMELAB_ROUTER_ADMIN_TOKEN;
  if (!token) {
    console.error('HOMELAB_ROUTER_ADMIN_TOKEN is not set: export the token the router was started with.');
    return 2;
  }
  if (command !== 'upstreams' && !route) {
    console.error(`usage: homelab-router ${command} <route>`);
    return 2;
  }
  const path = command === 'upstreams' ? '/admin/upstreams' : `/admin/${command}/${encodeURIComponent(route!)}`;
  let res: Response;
  try {
    res = await fetch(base + path, { method: command === 'upstreams' ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    console.error(`cannot reach the router at ${base}: ${(err as Error).message}`);
    return 1;
  }
  const body = (await res.json().catch(() => null)) as any;
  if (!res.ok) {
    console.error(`${res.status}: ${body?.error?.message ?? res.statusText}`);
    return 1;
  }
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
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  for (const row of [head, ...cells]) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}
