// Calls to the router from the page. The session cookie rides along on its own; every call that
// changes something also sends the UI header the router asks of cookie-authenticated changes.
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-homelab-ui'] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const msg = json?.error?.message ?? (typeof json?.error === 'string' ? json.error : null) ?? `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, msg, json);
  }
  return { json, headers: res.headers };
}

export const api = {
  get: (path) => call('GET', path).then((r) => r.json),
  post: (path, body) => call('POST', path, body ?? {}).then((r) => r.json),
  patch: (path, body) => call('PATCH', path, body).then((r) => r.json),
  del: (path) => call('DELETE', path).then((r) => r.json),
  withHeaders: call,
};

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
