// The web UI's shell: sign-in, navigation, theme, and which page shows for which path.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html, Link, navigate, ErrorBox } from './html.js';
import { Overview } from './pages/overview.js';
import { Requests } from './pages/requests.js';
import { RequestDetail } from './pages/detail.js';
import { Upstreams } from './pages/upstreams.js';
import { Policy } from './pages/policy.js';
import { Playground } from './pages/playground.js';
import { Keys } from './pages/keys.js';

const PAGES = [
  ['overview', 'Overview'],
  ['requests', 'Requests'],
  ['upstreams', 'Upstreams'],
  ['policy', 'Policy'],
  ['playground', 'Playground'],
  ['keys', 'Keys'],
];

function usePath() {
  const [path, setPath] = useState(location.pathname + location.search);
  useEffect(() => {
    const on = () => setPath(location.pathname + location.search);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return path;
}

function page(path) {
  const url = new URL(path, location.origin);
  const parts = url.pathname.replace(/^\/ui\/?/, '').split('/').filter(Boolean);
  const name = parts[0] ?? 'overview';
  if (name === 'requests' && parts[1]) return html`<${RequestDetail} id=${decodeURIComponent(parts[1])} />`;
  switch (name) {
    case 'requests':
      return html`<${Requests} query=${url.searchParams} />`;
    case 'upstreams':
      return html`<${Upstreams} />`;
    case 'policy':
      return html`<${Policy} />`;
    case 'playground':
      return html`<${Playground} query=${url.searchParams} />`;
    case 'keys':
      return html`<${Keys} />`;
    default:
      return html`<${Overview} />`;
  }
}

function theme() {
  return localStorage.getItem('hlr-theme') ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
}

function SignIn({ onSignedIn, adminEnabled }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api.post('/ui/api/login', { token }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      setToken('');
    }
  };
  return html`<main class="signin">
    <form onSubmit=${submit} class="card">
      <h1>homelab-router</h1>
      ${adminEnabled === false
        ? html`<p class="empty">The admin API is disabled on this router: set <code>HOMELAB_ROUTER_ADMIN_TOKEN</code> and restart it, then sign in with that token.</p>`
        : html`<p>Sign in with the router's admin token (<code>HOMELAB_ROUTER_ADMIN_TOKEN</code>).</p>`}
      <label for="token">Admin token</label>
      <input id="token" type="password" autocomplete="current-password" data-testid="login-token" value=${token} onInput=${(e) => setToken(e.currentTarget.value)} required />
      <button type="submit" data-testid="login-submit" disabled=${busy || token === ''}>Sign in</button>
      <${ErrorBox} error=${error} />
      <p class="hint">The token is sent once and exchanged for a session cookie; it is not kept in this page.</p>
    </form>
  </main>`;
}

function App() {
  const path = usePath();
  const [session, setSession] = useState(null);
  const [error, setError] = useState(null);
  const [mode, setMode] = useState(theme());
  useEffect(() => {
    api.get('/ui/api/session').then(setSession, setError);
  }, []);
  useEffect(() => {
    document.documentElement.dataset.theme = mode;
  }, [mode]);
  if (error) return html`<main><${ErrorBox} error=${error} /></main>`;
  if (!session) return html`<p class="boot">Loading…</p>`;
  if (!session.signed_in) return html`<${SignIn} adminEnabled=${session.admin_enabled} onSignedIn=${setSession} />`;
  const current = new URL(path, location.origin).pathname.replace(/^\/ui\/?/, '').split('/')[0] || 'overview';
  const signOut = async () => {
    await api.post('/ui/api/logout').catch(() => undefined);
    setSession({ signed_in: false, admin_enabled: true });
    navigate('/ui/');
  };
  const toggle = () => {
    const next = mode === 'dark' ? 'light' : 'dark';
    localStorage.setItem('hlr-theme', next);
    setMode(next);
  };
  return html`<div class="shell">
    <header>
      <${Link} href="/ui/" class="brand">homelab-router</${Link}>
      <nav aria-label="Pages">
        ${PAGES.map(([id, label]) => html`<${Link} href=${`/ui/${id}`} aria-current=${current === id ? 'page' : undefined}>${label}</${Link}>`)}
      </nav>
      <div class="tools">
        <button type="button" class="ghost" onClick=${toggle} aria-label="Switch between dark and light theme">${mode === 'dark' ? '☀ Light' : '☾ Dark'}</button>
        <button type="button" class="ghost" onClick=${signOut} data-testid="logout">Sign out</button>
      </div>
    </header>
    <main>${page(path)}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
