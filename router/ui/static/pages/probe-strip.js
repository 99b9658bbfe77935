// A route's recent health probes as a strip of bars: one per probe, oldest on the left, green
// when it passed, amber when the upstream said busy or loading, red when it failed; a bar's
// height is the probe's latency against the slowest one shown. The strip is one keyboard stop
// (a slider: arrows, Home, End pick a probe) and bars can be tapped; the picked probe's time,
// verdict, latency and status are written out below it. Fetched again only when the route's
// last probe time changes, so a two-second refresh of the page costs no extra calls.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ms, when } from '../format.js';
import { html, ErrorBox } from '../html.js';

/** A probe's verdict in one word (also the bar's class and data-state). */
export function verdict(p) {
  if (p.ok) return 'passed';
  if (p.loading) return 'loading';
  if (p.busy) return 'busy';
  return 'failed';
}

function describe(p) {
  const parts = [when(p.at), verdict(p), ms(p.latency_ms)];
  if (p.status !== null) parts.push(`HTTP ${p.status}`);
  else if (p.error) parts.push(p.error);
  if (p.cuda) parts.push('CUDA fault');
  return parts.join(' · ');
}

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function ProbeStrip({ route, lastProbeAt }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  // The picked probe, by its time; null follows the newest.
  const [picked, setPicked] = useState(null);
  useEffect(() => {
    let live = true;
    api.get(`/admin/api/upstreams/${encodeURIComponent(route)}/probes`).then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [route, lastProbeAt]);

  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return null;
  const probes = data.probes;
  if (probes.length === 0) {
    return html`<div class="probes" data-testid="probe-history" data-route=${route}>
      <p class="muted small">No probe yet: the router probes every ${data.interval_s} s (<code>health.interval_s</code>).</p>
    </div>`;
  }
  const found = picked === null ? -1 : probes.findIndex((p) => p.at === picked);
  const index = found === -1 ? probes.length - 1 : found;
  const current = probes[index];
  const passed = probes.filter((p) => p.ok).length;
  const slowest = Math.max(1, ...probes.map((p) => p.latency_ms));
  const pick = (i) => setPicked(i >= probes.length - 1 ? null : probes[Math.max(0, i)].at);
  const onKey = (e) => {
    const to = { ArrowLeft: index - 1, ArrowDown: index - 1, ArrowRight: index + 1, ArrowUp: index + 1, Home: 0, End: probes.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    pick(Math.min(probes.length - 1, Math.max(0, to)));
  };
  const span = probes.length > 1 ? `${when(probes[0].at)} – ${when(probes[probes.length - 1].at)}` : when(probes[0].at);
  return html`<div class="probes" data-testid="probe-history" data-route=${route}>
    <div class="probe-head"><span>probes</span><span data-testid="probe-summary">${passed} / ${probes.length} passed · median ${ms(median(probes.map((p) => p.latency_ms)))}</span></div>
    <div
      class="probe-strip"
      tabindex="0"
      role="slider"
      aria-label=${`Probe history of ${route}, ${span}: arrow keys pick a probe`}
      aria-valuemin="1"
      aria-valuemax=${probes.length}
      aria-valuenow=${index + 1}
      aria-valuetext=${describe(current)}
      onKeyDown=${onKey}
    >
      ${probes.map(
        (p, i) => html`<span
          class=${`probe-bar ${verdict(p)}${i === index ? ' picked' : ''}`}
          data-state=${verdict(p)}
          style=${`height:${p.ok || p.busy ? Math.max(15, Math.round((100 * p.latency_ms) / slowest)) : 100}%`}
          title=${describe(p)}
          onClick=${() => pick(i)}
        ></span>`,
      )}
    </div>
    <p class="probe-detail small" data-testid="probe-detail" aria-live="polite">${describe(current)}</p>
  </div>`;
}
