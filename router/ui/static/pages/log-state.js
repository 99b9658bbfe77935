// What the log pages show when the request log cannot answer.
import { html, ErrorBox, Empty } from '../html.js';

export function logUnavailable(error) {
  return error?.status === 404 || error?.status === 503 || /request.log/i.test(error?.message ?? '');
}

export function LogUnavailable({ error }) {
  return html`<section>
    <${Empty}>
      <p><strong>The request log is not available.</strong> It is off or not built into this router: set <code>request_log.enabled: true</code> in the policy (the default) and make <code>HOMELAB_ROUTER_DATA_DIR</code> writable.</p>
    </${Empty}>
    <${ErrorBox} error=${error} />
  </section>`;
}
