// The web UI's files: the page and its modules from router/ui/static/, and a fixed list of
// third-party modules from node_modules (Preact, its hooks, htm, uPlot), served as they ship.
// No build step and no CDN: a lab may have no internet. Everything is read once, at first use,
// and kept in memory (about 100 KB), so serving the UI never touches the disk again.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { packagePath } from '../paths.ts';

export interface Asset {
  body: Buffer;
  /** The same bytes gzipped once at load, sent to browsers that accept gzip. */
  gzip: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** URL path under /ui/vendor/ → the package file it is. */
const VENDOR: Record<string, [pkg: string, file: string]> = {
  'preact.mjs': ['preact', 'dist/preact.mjs'],
  'hooks.mjs': ['preact', 'hooks/dist/hooks.mjs'],
  'htm.mjs': ['htm', 'dist/htm.mjs'],
  'uplot.mjs': ['uplot', 'dist/uPlot.esm.js'],
  'uplot.css': ['uplot', 'dist/uPlot.min.css'],
};

/** Bare specifiers the modules import, mapped by the page's import map. */
export const IMPORT_MAP = JSON.stringify({
  imports: { preact: '/ui/vendor/preact.mjs', 'preact/hooks': '/ui/vendor/hooks.mjs', htm: '/ui/vendor/htm.mjs', uplot: '/ui/vendor/uplot.mjs' },
});

function typeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return TYPES[name.slice(dot)] ?? 'application/octet-stream';
}

function asset(body: Buffer, name: string): Asset {
  return { body, gzip: gzipSync(body, { level: 9 }), type: typeOf(name), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

function packageDir(pkg: string): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    // Packages whose exports hide package.json: walk up from the main entry.
    let dir = dirname(require.resolve(pkg));
    while (!readdirSync(dir).includes('package.json')) dir = dirname(dir);
    return dir;
  }
}

function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

export interface UiAssets {
  /** Path below /ui/ (e.g. "app/main.js", "vendor/preact.mjs") → file. */
  files: Map<string, Asset>;
  /** The Content-Security-Policy for the page: its own origin only, plus the import map's hash. */
  csp: string;
  /** Bytes of everything the first page load fetches, raw and gzipped (README's page weight). */
  weight: { raw: number; gzip: number; files: number };
}

let loaded: UiAssets | undefined;

export function uiAssets(): UiAssets {
  if (loaded) return loaded;
  const files = new Map<string, Asset>();
  const staticDir = packagePath('router/ui/static');
  for (const rel of walk(staticDir)) {
    let body = readFileSync(join(staticDir, rel));
    if (rel === 'index.html') body = Buffer.from(body.toString('utf8').replace('__IMPORT_MAP__', IMPORT_MAP));
    files.set(rel === 'index.html' ? '' : `app/${rel}`, asset(body, rel));
  }
  for (const [name, [pkg, file]] of Object.entries(VENDOR)) files.set(`vendor/${name}`, asset(readFileSync(join(packageDir(pkg), file)), name));
  const mapHash = createHash('sha256').update(IMPORT_MAP).digest('base64');
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'sha256-${mapHash}'`,
    // uPlot sizes its canvas with inline styles.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
  let raw = 0;
  let gzip = 0;
  for (const a of files.values()) {
    raw += a.body.length;
    gzip += a.gzip.length;
  }
  loaded = { files, csp, weight: { raw, gzip, files: files.size } };
  return loaded;
}
