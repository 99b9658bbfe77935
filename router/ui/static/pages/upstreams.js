// The lab's live capacity: one card per route with health, in-flight / queue against slots,
// busy or loading state, the last error and the recent probes; drain, undrain and recover-cuda
// after a confirmation. Refreshed every two seconds, and at once after an action.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ago, ms, when } from '../format.js';
import { html, ErrorBox, Empty } from '../html.js';
import { ProbeStrip } from './probe-strip.js';

const REFRESH_MS = 2000;

function Gauge({ label, value, max }) {
  const frac = max > 0 ? Math.min(1, value / max) : 0;
  const level = frac >= 1 ? 'full' : frac >= 0.75 ? 'high' : '';
  return html`<div class="gauge" role="meter" aria-label=${label} aria-valuenow=${value} aria-valuemin="0" aria-valuemax=${max}>
    <div class="gauge-label"><span>${label}</span><span>${value} / ${max}</span></div>
    <div class="gauge-track"><div class=${`gauge-fill ${level}`} style=${`width:${Math.round(frac * 100)}%`}></div></div>
  </div>`;
}

export function stateOf(u) {
  if (!u.healthy) return ['down', 'bad'];
  if (u.drained) return ['drained', 'warn'];
  if (u.busy_until) return [/load/i.test(u.last_error ?? '') ? 'loading' : 'busy', 'warn'];
  if (u.saturated) return ['saturated', 'warn'];
  return ['healthy', 'ok'];
}

const ACTIONS = {
  drain: { label: 'Drain', verb: 'Drain', explain: 'Auto-routed traffic will skip this route (pinned requests still pass).', run: (r) => api.post(`/admin/drain/${encodeURIComponent(r)}`) },
  undrain: { label: 'Undrain', verb: 'Undrain', explain: 'The route takes auto-routed traffic again.', run: (r) => api.del(`/admin/drain/${encodeURIComponent(r)}`) },
  'recover-cuda': { label: 'Recover CUDA', verb: 'Run the CUDA recovery runbook on', explain: 'Runs recovery.cuda on the route’s host over SSH; the GPU server restarts.', run: (r) => api.post('/admin/recover-cuda', { route: r }) },
};

/** recover-cuda can act on a route: managed by the router, with a CUDA runbook. */
function recoverable(route) {
  return route?.recovery?.managed !== false && typeof route?.recovery?.cuda === 'string';
}

function Card({ u, canRecover, onDone }) {
  const [confirm, setConfirm] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [state, tone] = stateOf(u);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await ACTIONS[confirm].run(u.route);
      setConfirm(null);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const button = (action) => html`<button type="button" data-action=${action} data-route=${u.route} onClick=${() => setConfirm(action)} disabled=${busy}>${ACTIONS[action].label}</button>`;
  return html`<article class="card upstream" data-testid="upstream-card" data-route=${u.route} data-state=${state}>
    <header><h2>${u.route}</h2><span class=${`badge ${tone}`}>${state}</span></header>
    <p class="muted model">${u.model} · ${u.runtime ?? ''}</p>
    <${Gauge} label="in flight" value=${u.in_flight} max=${u.slots} />
    <${Gauge} label="queued" value=${u.queued} max=${u.queue} />
    <dl class="facts small">
      <div><dt>probe</dt><dd>${u.last_probe_at ? `${ago(u.last_probe_at)} (${ms(u.latency_ms)})` : 'not yet'}</dd></div>
      ${u.busy_until ? html`<div><dt>skipped until</dt><dd>${when(u.busy_until)}</dd></div>` : null}
      <div><dt>failures in a row</dt><dd>${u.consecutive_failures}</dd></div>
      ${u.last_error ? html`<div class="wide"><dt>last error</dt><dd class="err">${u.last_error}</dd></div>` : null}
    </dl>
    <${ProbeStrip} route=${u.route} lastProbeAt=${u.last_probe_at} />
    <div class="actions">${u.drained ? button('undrain') : button('drain')} ${canRecover ? button('recover-cuda') : html`<span class="muted small">not managed by the router</span>`}</div>
    ${confirm
      ? html`<div class="confirm" role="alertdialog" aria-label=${`Confirm ${ACTIONS[confirm].label}`}>
          <p><strong>${ACTIONS[confirm].verb} ${u.route}?</strong> ${ACTIONS[confirm].explain}</p>
          <button type="button" class="danger" data-action="confirm" data-route=${u.route} onClick=${run} disabled=${busy}>Yes, ${ACTIONS[confirm].label.toLowerCase()}</button>
          <button type="button" class="ghost" onClick=${() => setConfirm(null)}>Cancel</button>
        </div>`
      : null}
    <${ErrorBox} error=${error} />
  </article>`;
}

export function Upstreams() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const [routes, setRoutes] = useState({});
  useEffect(() => {
    api.get('/admin/policy').then((p) => setRoutes(p.policy.routes ?? {}), setError);
  }, []);
  useEffect(() => {
    let live = true;
    const load = () => api.get('/admin/upstreams').then((d) => live && (setList(d.upstreams), setError(null)), (e) => live && setError(e));
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [tick]);
  return html`<section>
    <div class="bar"><h1>Upstreams</h1><span class="muted">refreshed every ${REFRESH_MS / 1000} s</span></div>
    <${ErrorBox} error=${error} />
    ${list && list.length === 0 ? html`<${Empty}>No routes in the policy. Add one under <code>routes:</code> (see <code>homelab-router init</code>).</${Empty}>` : null}
    <div class="cards">${(list ?? []).map((u) => html`<${Card} key=${u.route} u=${u} canRecover=${recoverable(routes[u.route])} onDone=${() => setTick(tick + 1)} />`)}</div>
  </section>`;
}
