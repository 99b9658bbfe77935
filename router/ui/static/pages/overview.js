// Overview: traffic, errors, latency, tokens and cost-equivalent over a range, split by one
// dimension, from the request log's hourly rollups (GET /admin/api/analytics).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, qs } from '../api.js';
import { TimeChart } from '../chart.js';
import { big, ms, num, pct, usd, toDate } from '../format.js';
import { html, ErrorBox, Empty, Link } from '../html.js';
import { LogUnavailable, logUnavailable } from './log-state.js';

const RANGES = ['1h', '24h', '7d', '30d'];
const DIMENSIONS = ['route', 'bucket', 'client', 'model', 'status'];

function Tile({ label, value, sub, testid }) {
  return html`<div class="tile"><div class="label">${label}</div><div class="value" data-testid=${testid}>${value}</div>${sub ? html`<div class="sub">${sub}</div>` : null}</div>`;
}

/** The union of every series' timestamps, and each series' values aligned to it. */
function align(series, field) {
  const ts = [...new Set(series.flatMap((s) => s.points.map((p) => toDate(p.t).getTime() / 1000)))].sort((a, b) => a - b);
  const index = new Map(ts.map((t, i) => [t, i]));
  return {
    x: ts,
    series: series.slice(0, 8).map((s) => {
      const values = new Array(ts.length).fill(null);
      for (const p of s.points) values[index.get(toDate(p.t).getTime() / 1000)] = p[field] ?? null;
      return { label: String(s.key), values };
    }),
  };
}

function sum(points, field) {
  return points.reduce((a, p) => a + (p[field] ?? 0), 0);
}

export function Overview() {
  const [range, setRange] = useState('24h');
  const [by, setBy] = useState('route');
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    setError(null);
    const load = () => api.get(`/admin/api/analytics${qs({ range, by })}`).then((d) => live && setData(d), (e) => live && setError(e));
    load();
    const timer = setInterval(load, 10_000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [range, by]);
  const requests = useMemo(() => (data ? align(data.series, 'requests') : null), [data]);
  const latency = useMemo(() => (data ? align(data.series, 'p95_ms') : null), [data]);
  if (error && logUnavailable(error)) return html`<${LogUnavailable} error=${error} />`;
  const t = data?.totals ?? {};
  const unpriced = data?.series?.some((s) => s.points.some((p) => p.requests > 0 && p.cost_equivalent_usd === null));
  return html`<section>
    <div class="bar">
      <h1>Overview</h1>
      <div class="seg" role="group" aria-label="Range">
        ${RANGES.map((r) => html`<button type="button" aria-pressed=${r === range} onClick=${() => setRange(r)}>${r}</button>`)}
      </div>
      <label>by <select value=${by} onChange=${(e) => setBy(e.currentTarget.value)}>${DIMENSIONS.map((d) => html`<option value=${d}>${d}</option>`)}</select></label>
    </div>
    <${ErrorBox} error=${error} />
    ${!data && !error ? html`<p class="muted">Loading…</p>` : null}
    ${data
      ? html`<div class="tiles">
            <${Tile} label="Requests" value=${num(t.requests ?? 0)} testid="overview-total-requests" sub=${`in the last ${range}`} />
            <${Tile} label="Errors" value=${num(t.errors ?? 0)} sub=${pct(t.errors ?? 0, t.requests ?? 0)} />
            <${Tile} label="Latency p50 / p95" value=${`${ms(t.p50_ms)} / ${ms(t.p95_ms)}`} />
            <${Tile} label="Tokens in / out" value=${`${big(t.prompt_tokens ?? 0)} / ${big(t.completion_tokens ?? 0)}`} />
            <${Tile} label="Cost-equivalent" value=${usd(t.cost_equivalent_usd ?? null)} sub=${unpriced ? 'some traffic unpriced (no reference model): set pricing.reference' : 'what the same tokens would cost on the reference cloud models'} />
          </div>
          ${(t.requests ?? 0) === 0
            ? html`<${Empty}>No requests in the last ${range}. Send one (see the <${Link} href="/ui/playground">playground</${Link}>) and it shows here.</${Empty}>`
            : html`<div class="charts">
                  <${TimeChart} title=${`Requests by ${by}`} x=${requests.x} series=${requests.series} />
                  <${TimeChart} title=${`Latency p95 by ${by}`} x=${latency.x} series=${latency.series} unit=" ms" />
                </div>
                <table class="grid">
                  <thead><tr><th>${by}</th><th class="n">requests</th><th class="n">errors</th><th class="n">tokens in</th><th class="n">tokens out</th><th class="n">cost-equivalent</th></tr></thead>
                  <tbody>
                    ${data.series.map((s) => {
                      const cost = s.points.some((p) => p.cost_equivalent_usd !== null) ? sum(s.points, 'cost_equivalent_usd') : null;
                      return html`<tr><td>${String(s.key)}</td><td class="n">${num(sum(s.points, 'requests'))}</td><td class="n">${num(sum(s.points, 'errors'))}</td><td class="n">${big(sum(s.points, 'prompt_tokens'))}</td><td class="n">${big(sum(s.points, 'completion_tokens'))}</td><td class="n">${usd(cost)}</td></tr>`;
                    })}
                  </tbody>
                </table>`}`
      : null}
  </section>`;
}
