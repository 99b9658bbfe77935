// The request explorer: the filters of the request log, cursor paging, and a live tail over
// SSE that can be paused. Live rows are buffered and drawn a few times a second, so a busy lab
// (hundreds of requests a second) does not redraw the table per request.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, qs } from '../api.js';
import { ms, num, when, statusClass } from '../format.js';
import { html, ErrorBox, Empty, Link, navigate } from '../html.js';
import { LogUnavailable, logUnavailable } from './log-state.js';

const FILTERS = ['route', 'bucket', 'status', 'client', 'model', 'reason', 'q'];
const SINCE = { '': 'any time', '1h': 'last hour', '24h': 'last 24 h', '7d': 'last 7 days', '30d': 'last 30 days' };
const SINCE_MS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
const MAX_ROWS = 500;
const FLUSH_MS = 400;

function matches(row, f) {
  if (f.route && row.route !== f.route) return false;
  if (f.bucket && row.bucket !== f.bucket) return false;
  if (f.client && row.client !== f.client) return false;
  if (f.model && row.model !== f.model) return false;
  if (f.reason && row.reason !== f.reason) return false;
  if (f.q && !String(row.request_id).startsWith(f.q)) return false;
  if (f.status === '4xx' && !(row.status >= 400 && row.status < 500)) return false;
  if (f.status === '5xx' && !(row.status >= 500)) return false;
  if (f.status && /^\d+$/.test(f.status) && row.status !== Number(f.status)) return false;
  return true;
}

function filtersFrom(query) {
  const f = {};
  for (const k of [...FILTERS, 'since']) f[k] = query.get(k) ?? '';
  return f;
}

export function Requests({ query }) {
  const [filters, setFilters] = useState(() => filtersFrom(query));
  const [rows, setRows] = useState([]);
  const [cursor, setCursor] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(true);
  const [live, setLive] = useState(true);
  const [names, setNames] = useState({ routes: [], buckets: [] });
  const pending = useRef([]);

  useEffect(() => {
    api.get('/admin/policy').then((p) => setNames({ routes: Object.keys(p.policy.routes ?? {}), buckets: Object.keys(p.policy.buckets ?? {}) }), () => undefined);
  }, []);

  const params = (extra = {}) => {
    const { since, ...rest } = filters;
    return { ...rest, from: since ? Date.now() - SINCE_MS[since] : '', limit: 50, ...extra };
  };

  useEffect(() => {
    let current = true;
    setLoading(true);
    setError(null);
    api.get(`/admin/api/requests${qs(params())}`).then(
      (d) => {
        if (!current) return;
        setRows(d.requests);
        setCursor(d.next_cursor);
        setLoading(false);
      },
      (e) => current && (setError(e), setLoading(false)),
    );
    return () => {
      current = false;
    };
  }, [filters]);

  useEffect(() => {
    if (!live) return undefined;
    const es = new EventSource('/admin/api/events');
    es.addEventListener('request', (e) => {
      try {
        const row = JSON.parse(e.data);
        if (matches(row, filters)) pending.current.push(row);
      } catch {
        /* a malformed event is skipped */
      }
    });
    const timer = setInterval(() => {
      if (pending.current.length === 0) return;
      const fresh = pending.current.reverse();
      pending.current = [];
      setRows((old) => [...fresh, ...old].slice(0, MAX_ROWS));
    }, FLUSH_MS);
    return () => {
      es.close();
      clearInterval(timer);
      pending.current = [];
    };
  }, [live, filters]);

  const more = () => {
    api.get(`/admin/api/requests${qs(params({ cursor }))}`).then((d) => {
      setRows((old) => [...old, ...d.requests]);
      setCursor(d.next_cursor);
    }, setError);
  };

  const apply = (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const next = {};
    for (const k of [...FILTERS, 'since']) next[k] = String(form.get(k) ?? '').trim();
    setFilters(next);
    history.replaceState(null, '', `/ui/requests${qs(next)}`);
  };

  if (error && logUnavailable(error)) return html`<${LogUnavailable} error=${error} />`;
  const select = (name, options) => html`<select name=${name} value=${filters[name]}><option value="">any ${name}</option>${options.map((o) => html`<option value=${o}>${o}</option>`)}</select>`;
  return html`<section>
    <div class="bar">
      <h1>Requests</h1>
      <button type="button" onClick=${() => setLive(!live)} aria-pressed=${live} data-testid="live-toggle">${live ? '❚❚ Pause live tail' : '▶ Resume live tail'}</button>
    </div>
    <form class="filters" onSubmit=${apply} aria-label="Filters">
      <select name="since" value=${filters.since}>${Object.entries(SINCE).map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select>
      ${select('route', names.routes)} ${select('bucket', names.buckets)}
      <select name="status" value=${filters.status}><option value="">any status</option><option value="200">200</option><option value="4xx">4xx</option><option value="5xx">5xx</option></select>
      <input name="client" placeholder="client" value=${filters.client} aria-label="client" />
      <input name="model" placeholder="model" value=${filters.model} aria-label="model" />
      <input name="reason" placeholder="reason" value=${filters.reason} aria-label="reason" />
      <input name="q" placeholder="request id prefix" value=${filters.q} aria-label="request id prefix" />
      <button type="submit">Apply</button>
    </form>
    <${ErrorBox} error=${error} />
    ${loading ? html`<p class="muted">Loading…</p>` : null}
    ${!loading && rows.length === 0 ? html`<${Empty}>No requests match. ${live ? 'New ones appear here as they finish.' : ''}</${Empty}>` : null}
    <div class="scroll">
      <table class="grid rows" data-testid="requests-table">
        <thead><tr><th>time</th><th>status</th><th>client</th><th>model</th><th>bucket</th><th>route</th><th>reason</th><th class="n">TTFB</th><th class="n">duration</th><th class="n">tokens</th></tr></thead>
        <tbody>
          ${rows.map(
            (r) => html`<tr key=${r.request_id} data-request-id=${r.request_id} tabindex="0" onClick=${() => navigate(`/ui/requests/${encodeURIComponent(r.request_id)}`)} onKeyDown=${(e) => e.key === 'Enter' && navigate(`/ui/requests/${encodeURIComponent(r.request_id)}`)}>
              <td><${Link} href=${`/ui/requests/${encodeURIComponent(r.request_id)}`}>${when(r.ts)}</${Link}></td>
              <td><span class=${`badge ${statusClass(r.status)}`}>${r.status}</span></td>
              <td>${r.client ?? '–'}</td><td>${r.model ?? '–'}</td><td>${r.bucket ?? '–'}</td>
              <td>${r.route ?? '–'}${r.fallback_path && r.fallback_path.includes('>') ? html` <span class="muted" title=${r.fallback_path}>↪</span>` : null}</td>
              <td>${r.reason ?? '–'}</td><td class="n">${ms(r.ttfb_ms)}</td><td class="n">${ms(r.duration_ms)}</td>
              <td class="n">${r.prompt_tokens === null && r.completion_tokens === null ? '–' : `${num(r.prompt_tokens)} / ${num(r.completion_tokens)}`}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${cursor ? html`<button type="button" onClick=${more}>Older requests</button>` : null}
  </section>`;
}
