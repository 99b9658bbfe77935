// One place that binds htm to Preact, so every page writes html`...`.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

/** Client-side navigation below /ui/ (pages are real paths, so reload and bookmarks work). */
export function navigate(path) {
  if (location.pathname + location.search === path) return;
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** An <a> that navigates without a page load. */
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

/** A failed call shown where its data would have been, never swallowed. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">${error.status ? `${error.status}: ` : ''}${error.message}</div>`;
}

export function Empty({ children }) {
  return html`<div class="empty">${children}</div>`;
}
