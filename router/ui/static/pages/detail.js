// One request: the decision (bucket scores, matched terms, reason, fallback path), every
// attempt with its timings, TTFB, tokens, cost-equivalent and the payload when it was stored.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ms, num, usd, when, statusClass } from '../format.js';
import { html, ErrorBox, Link } from '../html.js';

function Scores({ scores, matched, bucket }) {
  const entries = Object.entries(scores ?? {}).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return html`<p class="muted">No bucket scores (the bucket was pinned, or the request never reached the classifier).</p>`;
  const top = Math.max(1, ...entries.map((e) => e[1]));
  return html`<table class="grid scores">
    <thead><tr><th>bucket</th><th>score</th><th>matched terms</th></tr></thead>
    <tbody>${entries.map(([b, s]) => html`<tr class=${b === bucket ? 'chosen' : ''}><td>${b}</td><td><span class="meter"><span style=${`width:${Math.round((100 * s) / top)}%`}></span></span> ${s}</td><td>${(matched?.[b] ?? []).join(', ') || '–'}</td></tr>`)}</tbody>
  </table>`;
}

export function promptOf(payload) {
  const req = payload?.request;
  const body = typeof req === 'string' ? safeJson(req) : req;
  const msgs = body?.messages;
  if (!Array.isArray(msgs)) return null;
  const user = [...msgs].reverse().find((m) => m.role === 'user');
  if (!user) return null;
  return typeof user.content === 'string' ? user.content : (user.content ?? []).filter((p) => p.type === 'text').map((p) => p.text).join('\n');
}

function safeJson(s) {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

export function RequestDetail({ id }) {
  const [row, setRow] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api.get(`/admin/api/requests/${encodeURIComponent(id)}`).then(setRow, setError);
  }, [id]);
  if (error) return html`<section><${Link} href="/ui/requests">← Requests</${Link}><${ErrorBox} error=${error} /></section>`;
  if (!row) return html`<p class="muted">Loading…</p>`;
  const d = row.decision ?? {};
  const prompt = promptOf(row.payload);
  const attempts = Array.isArray(row.attempts) ? row.attempts : [];
  const field = (label, value) => html`<div><dt>${label}</dt><dd>${value ?? '–'}</dd></div>`;
  return html`<section data-testid="request-detail">
    <${Link} href="/ui/requests">← Requests</${Link}>
    <h1>Request <code>${row.request_id}</code></h1>
    <dl class="facts">
      ${field('time', when(row.ts))}
      ${field('status', html`<span class=${`badge ${statusClass(row.status)}`}>${row.status}</span>${row.error_code ? ` ${row.error_code}` : ''}`)}
      ${field('endpoint', row.endpoint)} ${field('client', row.client)} ${field('user agent', row.user_agent)}
      ${field('model asked', row.model)} ${field('bucket', row.bucket)} ${field('route', row.route)} ${field('served model', row.served_model)}
      ${field('reason', row.reason)} ${field('fallback path', row.fallback_path)} ${field('stream', row.stream ? 'yes' : 'no')}
      ${field('TTFB', ms(row.ttfb_ms))} ${field('duration', ms(row.duration_ms))}
      ${field('tokens (prompt / completion)', `${num(row.prompt_tokens)} / ${num(row.completion_tokens)}`)} ${field('estimated prompt tokens', num(row.estimated_tokens))}
      ${field('cost-equivalent', html`${usd(row.cost_equivalent_usd)}${row.price_ref ? html` <span class="muted">(${row.price_ref})</span>` : null}`)}
    </dl>
    <h2>Decision</h2>
    <${Scores} scores=${d.scores} matched=${d.matched} bucket=${row.bucket} />
    ${d.size_tier || d.has_image !== undefined ? html`<p class="muted">size tier ${d.size_tier ?? '–'}, image ${d.has_image ? 'yes' : 'no'}${d.rule ? `, rule ${d.rule}` : ''}</p>` : null}
    <p><${Link} href=${`/ui/playground${prompt ? `?prompt=${encodeURIComponent(prompt)}` : ''}`}>Explain ${prompt ? 'this prompt' : 'a prompt'} in the playground →</${Link}></p>
    <h2>Attempts</h2>
    ${attempts.length === 0
      ? html`<p class="muted">No upstream was tried (refused before routing).</p>`
      : html`<table class="grid"><thead><tr><th>#</th><th>route</th><th>outcome</th><th class="n">status</th><th class="n">time</th></tr></thead>
          <tbody>${attempts.map((a, i) => html`<tr><td>${i + 1}</td><td>${a.route}</td><td>${a.outcome}</td><td class="n">${a.status ?? '–'}</td><td class="n">${ms(a.ms)}</td></tr>`)}</tbody></table>`}
    <h2>Payload</h2>
    ${row.payload
      ? html`<details open><summary>request</summary><pre>${pretty(row.payload.request)}</pre></details>
          <details><summary>response</summary><pre>${pretty(row.payload.response)}</pre></details>`
      : html`<p class="muted">Not stored. Set <code>request_log.store_payloads: true</code> to keep prompts and answers (for <code>payload_retention_days</code>).</p>`}
  </section>`;
}

function pretty(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'string') {
    const j = safeJson(v);
    return j === null ? v : JSON.stringify(j, null, 2);
  }
  return JSON.stringify(v, null, 2);
}
