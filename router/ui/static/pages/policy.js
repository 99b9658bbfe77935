// The active policy and its hash, the reload history with what changed, and a reload from the
// file with the errors listed by key.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { when } from '../format.js';
import { html, ErrorBox, Empty } from '../html.js';

/** Keywords are plain strings or {term, weight}; the first dozen are shown. */
function terms(keywords = []) {
  const shown = keywords.slice(0, 12).map((k) => (typeof k === 'string' ? k : `${k.term}${k.weight !== undefined && k.weight !== 1 ? ` ×${k.weight}` : ''}`));
  return `${shown.join(', ')}${keywords.length > 12 ? ` … (${keywords.length} in all)` : ''}`;
}

export function Policy() {
  const [policy, setPolicy] = useState(null);
  const [history, setHistory] = useState([]);
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = () => {
    api.get('/admin/policy').then(setPolicy, setError);
    api.get('/admin/api/reloads').then((d) => setHistory(d.reloads), () => undefined);
  };
  useEffect(load, []);
  const reload = async () => {
    setBusy(true);
    setResult(null);
    try {
      const r = await api.post('/admin/reload-config');
      setResult({ ok: true, text: r.result === 'unchanged' ? 'The file is unchanged.' : `Reloaded: ${r.changed.join(', ') || 'no keys changed'}.`, errors: [] });
    } catch (err) {
      setResult({ ok: false, text: err.message, errors: err.body?.errors ?? [] });
    } finally {
      setBusy(false);
      load();
    }
  };
  const p = policy?.policy;
  return html`<section>
    <div class="bar"><h1>Policy</h1><button type="button" onClick=${reload} disabled=${busy} data-action="reload">Validate and reload from file</button></div>
    <${ErrorBox} error=${error} />
    ${result
      ? html`<div class=${result.ok ? 'notice' : 'error'} role="status">${result.ok ? result.text : 'The file is invalid; the running policy is unchanged.'}
          ${result.errors.length ? html`<ul class="errors">${result.errors.map((e) => html`<li><code>${e.split(':')[0]}</code>${e.slice(e.indexOf(':'))}</li>`)}</ul>` : null}</div>`
      : null}
    ${p
      ? html`<dl class="facts">
            <div><dt>hash</dt><dd><code data-testid="policy-hash">${policy.hash}</code></dd></div>
            <div><dt>file</dt><dd>${policy.path ?? '(none: started without a file)'}</dd></div>
            <div><dt>loaded</dt><dd>${when(policy.loaded_at)}</dd></div>
          </dl>
          <h2>Routes</h2>
          <div class="scroll"><table class="grid"><thead><tr><th>route</th><th>model</th><th>runtime</th><th>vision</th><th class="n">context</th><th class="n">slots</th><th class="n">queue</th><th>busy →</th><th>outage →</th></tr></thead>
            <tbody>${Object.entries(p.routes).map(([name, r]) => html`<tr><td>${name}</td><td>${r.model}</td><td>${r.runtime}</td><td>${r.vision ? 'yes' : ''}</td><td class="n">${r.context_tokens ?? ''}</td><td class="n">${r.slots}</td><td class="n">${r.queue}</td>
              <td>${r.fallback === 'terminal' ? 'terminal' : (r.fallback?.busy ?? '–')}</td><td>${r.fallback === 'terminal' ? 'terminal' : (r.fallback?.outage ?? '–')}</td></tr>`)}</tbody></table></div>
          <h2>Buckets</h2>
          <div class="scroll"><table class="grid"><thead><tr><th>bucket</th><th>route</th><th>medium / large</th><th>keywords</th></tr></thead>
            <tbody>${Object.entries(p.buckets).map(([name, b]) => html`<tr><td>${name}${b.fail_closed ? html` <span class="badge warn">fail-closed</span>` : null}</td><td>${b.route}</td><td>${[b.medium, b.large].filter(Boolean).join(' / ') || '–'}</td><td class="terms">${terms(b.keywords)}</td></tr>`)}</tbody></table></div>
          <details><summary>Whole policy (JSON)</summary><pre>${JSON.stringify(p, null, 2)}</pre></details>`
      : null}
    <h2>Reload history</h2>
    ${history.length === 0
      ? html`<${Empty}>No reloads since the router started. Edit the policy file (it reloads on change) or use the button above.</${Empty}>`
      : html`<table class="grid"><thead><tr><th>time</th><th>from</th><th>result</th><th>changed</th><th>hash</th></tr></thead>
          <tbody>${history.map((h) => html`<tr><td>${when(h.at)}</td><td>${h.source}</td><td><span class=${`badge ${h.result === 'invalid' ? 'bad' : 'ok'}`}>${h.result}</span></td>
            <td>${h.result === 'invalid' ? h.errors.join('; ') : h.changed.join(', ') || '–'}</td><td><code>${h.hash.slice(0, 12)}</code></td></tr>`)}</tbody></table>`}
  </section>`;
}
