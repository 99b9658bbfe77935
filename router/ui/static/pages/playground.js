// Explain any prompt (with or without an image) against the live policy and state, and
// optionally send it and watch the answer stream in.
import { useState } from 'preact/hooks';
import { html, ErrorBox } from '../html.js';

// 1×1 transparent PNG: enough for "an image is present", which is all routing looks at.
const TINY_PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

function body(prompt, image, stream) {
  const content = image ? [{ type: 'text', text: prompt }, { type: 'image_url', image_url: { url: image } }] : prompt;
  return JSON.stringify({ model: 'homelab/auto', stream, messages: [{ role: 'user', content }] });
}

async function post(path, json) {
  // Same-origin data-plane call: the browser adds the router's own Origin, which it accepts. With
  // auth.mode: keys, the session cookie plus the UI's header stand in for an API key (the
  // request is logged as the signed-in operator, "ui:admin"); no key is ever held by the page.
  return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-homelab-ui': '1' }, credentials: 'same-origin', body: json });
}

async function failure(res) {
  const text = await res.text();
  // With auth.mode: keys a 401 here means the session is gone (expired, signed out elsewhere).
  const hint = res.status === 401 ? ' Your session may have ended: reload the page and sign in again.' : '';
  try {
    return new Error(`${res.status}: ${JSON.parse(text).error.message}${hint}`);
  } catch {
    return new Error(`${res.status}: ${text.slice(0, 300)}${hint}`);
  }
}

function Decision({ d }) {
  const entries = Object.entries(d.scores ?? {}).filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]);
  return html`<div class="card" data-testid="playground-result">
    <dl class="facts">
      <div><dt>route</dt><dd><strong data-testid="playground-route">${d.route ?? 'none available'}</strong></dd></div>
      <div><dt>bucket</dt><dd>${d.bucket}</dd></div>
      <div><dt>reason</dt><dd>${d.reason}</dd></div>
      <div><dt>fallback path</dt><dd>${d.fallback_path || '–'}</dd></div>
      <div><dt>estimated tokens</dt><dd>${d.estimated_tokens} (${d.size_tier})</dd></div>
      <div><dt>image</dt><dd>${d.has_image ? 'yes' : 'no'}</dd></div>
    </dl>
    ${d.error ? html`<div class="error">${d.error.message}</div>` : null}
    <h3>Scores</h3>
    ${entries.length === 0 ? html`<p class="muted">No keyword matched: the default bucket applies.</p>` : html`<ul class="terms">${entries.map(([b, s]) => html`<li><strong>${b}</strong> ${s}: ${(d.matched?.[b] ?? []).join(', ')}</li>`)}</ul>`}
    <h3>Fallback chains</h3>
    <p>busy: ${(d.fallback_chain?.busy ?? []).join(' → ') || '–'} · outage: ${(d.fallback_chain?.outage ?? []).join(' → ') || '–'}</p>
    ${d.skipped?.length ? html`<p class="muted">skipped: ${d.skipped.map((s) => `${s.route} (${s.why ?? s.reason ?? ''})`).join(', ')}</p>` : null}
  </div>`;
}

export function Playground({ query }) {
  const [prompt, setPrompt] = useState(query.get('prompt') ?? '');
  const [image, setImage] = useState(null);
  const [decision, setDecision] = useState(null);
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const explain = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await post('/v1/route/explain', body(prompt, image, false));
      if (!res.ok) throw await failure(res);
      setDecision(await res.json());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const send = async () => {
    setBusy(true);
    setError(null);
    setAnswer({ text: '', route: null, done: false });
    try {
      const res = await post('/v1/chat/completions', body(prompt, image, true));
      const route = res.headers.get('x-homelab-route');
      if (!res.ok) throw await failure(res);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      let text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let nl;
        while ((nl = buffered.indexOf('\n\n')) !== -1) {
          const event = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 2);
          const data = event.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
          if (!data || data === '[DONE]') continue;
          const json = JSON.parse(data);
          if (json.error) throw new Error(json.error.message);
          text += json.choices?.[0]?.delta?.content ?? '';
          setAnswer({ text, route, done: false });
        }
      }
      setAnswer({ text, route, done: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const pick = (e) => {
    const file = e.currentTarget.files?.[0];
    if (!file) return setImage(null);
    const reader = new FileReader();
    reader.onload = () => setImage(String(reader.result));
    reader.readAsDataURL(file);
  };

  return html`<section>
    <h1>Playground</h1>
    <form onSubmit=${explain} class="card playground">
      <label for="pg-prompt">Prompt</label>
      <textarea id="pg-prompt" rows="5" data-testid="playground-input" value=${prompt} onInput=${(e) => setPrompt(e.currentTarget.value)} placeholder="Refactor this FastAPI handler and add pytest tests"></textarea>
      <div class="row">
        <label><input type="checkbox" checked=${image !== null} onChange=${(e) => setImage(e.currentTarget.checked ? TINY_PNG : null)} /> with an image</label>
        <label class="file">or attach one <input type="file" accept="image/*" onChange=${pick} /></label>
      </div>
      <div class="row">
        <button type="submit" data-testid="playground-submit" disabled=${busy || prompt.trim() === ''}>Explain</button>
        <button type="button" class="ghost" onClick=${send} disabled=${busy || prompt.trim() === ''} data-testid="playground-send">Send it (streams from the chosen GPU)</button>
      </div>
      <p class="hint">Explain calls nothing: it shows what a real request would get now (drains, health and the context guard applied). Both go to the router's real <code>/v1</code> endpoints as you, the signed-in operator (logged as client <code>ui:admin</code>), so no API key is needed even with <code>auth.mode: keys</code>.</p>
    </form>
    <${ErrorBox} error=${error} />
    ${decision ? html`<${Decision} d=${decision} />` : null}
    ${answer ? html`<div class="card answer" data-testid="playground-answer" data-done=${answer.done ? 'true' : 'false'}><h3>Answer ${answer.route ? html`from <code>${answer.route}</code>` : null} ${answer.done ? '' : '…'}</h3><pre>${answer.text}</pre></div>` : null}
  </section>`;
}
