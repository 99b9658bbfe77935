// Per-application keys: list with this month's usage, create (the key is shown once), rotate
// and revoke. Talks to /admin/keys.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { big, num, when } from '../format.js';
import { html, ErrorBox, Empty } from '../html.js';

function list(v) {
  const items = String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return items.length ? items : undefined;
}

function int(v) {
  const s = String(v ?? '').trim();
  return s === '' ? undefined : Number(s);
}

export function Keys() {
  const [keys, setKeys] = useState(null);
  const [error, setError] = useState(null);
  const [secret, setSecret] = useState(null);
  const load = () => api.get('/admin/keys').then((d) => (setKeys(d.keys), setError(null)), setError);
  useEffect(() => void load(), []);
  if (error?.status === 404 && keys === null) return html`<section><h1>Keys</h1><${Empty}>Per-application keys are not available on this router.</${Empty}></section>`;

  const create = async (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const body = { name: String(f.get('name')).trim(), models: list(f.get('models')), rpm: int(f.get('rpm')), max_in_flight: int(f.get('max_in_flight')), monthly_tokens: int(f.get('monthly_tokens')) };
    try {
      const r = await api.post('/admin/keys', JSON.parse(JSON.stringify(body)));
      setSecret({ name: r.name, key: r.key });
      e.currentTarget?.reset?.();
      load();
    } catch (err) {
      setError(err);
    }
  };
  const act = async (k, what) => {
    if (!confirm(`${what === 'rotate' ? 'Rotate' : 'Revoke'} the key "${k.name}"? ${what === 'rotate' ? 'Its old secret stops working at once.' : 'Apps using it get 401 from now on.'}`)) return;
    try {
      if (what === 'rotate') {
        const r = await api.post(`/admin/keys/${encodeURIComponent(k.id)}/rotate`);
        setSecret({ name: k.name, key: r.key });
      } else await api.del(`/admin/keys/${encodeURIComponent(k.id)}`);
      load();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section>
    <h1>Keys</h1>
    <${ErrorBox} error=${error} />
    ${secret ? html`<div class="notice" role="status"><p>The key for <strong>${secret.name}</strong> — copy it now, it is not shown again:</p><pre data-testid="new-key">${secret.key}</pre><button type="button" class="ghost" onClick=${() => setSecret(null)}>Done</button></div>` : null}
    <form class="card filters" onSubmit=${create} aria-label="New key">
      <input name="name" placeholder="app name (e.g. discord-bot)" required aria-label="name" />
      <input name="models" placeholder="models (comma-separated, globs; empty = all)" aria-label="models" />
      <input name="rpm" type="number" min="1" placeholder="requests / min" aria-label="requests per minute" />
      <input name="max_in_flight" type="number" min="1" placeholder="max in flight" aria-label="max in flight" />
      <input name="monthly_tokens" type="number" min="1" placeholder="tokens / month" aria-label="tokens per month" />
      <button type="submit">Create key</button>
    </form>
    ${keys && keys.length === 0 ? html`<${Empty}>No keys yet. Create one per app above; with <code>auth.mode: keys</code> every /v1 request needs one.</${Empty}>` : null}
    ${keys && keys.length
      ? html`<div class="scroll"><table class="grid"><thead><tr><th>name</th><th>prefix</th><th>models</th><th class="n">rpm</th><th class="n">in flight</th><th class="n">tokens this month</th><th class="n">requests this month</th><th>last used</th><th>expires</th><th></th></tr></thead>
          <tbody>${keys.map((k) => html`<tr class=${k.revoked ? 'revoked' : ''}><td>${k.name}</td><td><code>${k.prefix}</code></td><td>${(k.models ?? ['*']).join(', ')}</td><td class="n">${k.rpm ?? '–'}</td><td class="n">${k.max_in_flight ?? '–'}</td>
            <td class="n">${big(k.used_tokens_month ?? 0)}${k.monthly_tokens ? ` / ${big(k.monthly_tokens)}` : ''}</td><td class="n">${num(k.requests_month ?? 0)}</td><td>${when(k.last_used_at)}</td><td>${k.expires_at ? when(k.expires_at) : 'never'}</td>
            <td>${k.revoked ? html`<span class="badge bad">revoked</span>` : html`<button type="button" class="ghost" onClick=${() => act(k, 'rotate')}>Rotate</button> <button type="button" class="ghost danger" onClick=${() => act(k, 'revoke')}>Revoke</button>`}</td></tr>`)}</tbody></table></div>`
      : null}
  </section>`;
}
