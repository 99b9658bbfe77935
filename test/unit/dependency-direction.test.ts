// Dependencies point one way (README "Architecture"): each folder of router/ sits on a layer and
// imports only from folders on lower layers, and no two modules import each other, directly or
// through others. Type-only imports count: a cycle of types is a cycle of meaning.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROUTER = fileURLToPath(new URL('../../router/', import.meta.url));

/** Lowest first. The files at router/'s top level are named by what they are. */
export const LAYERS: readonly (readonly string[])[] = [
  ['core'], // errors.ts, paths.ts, request-id.ts
  ['classify'],
  ['policy'],
  ['decide', 'schema-guard', 'keys', 'init'],
  ['upstream'],
  ['obs'],
  ['reqlog', 'cluster', 'proxy'],
  ['recovery'], // the watchdog: under the cluster's leader lock when there is one
  ['protocol'],
  ['service'], // service.ts: the running router's state, built from the folders below
  ['http', 'admin'],
  ['ui'],
  ['app'], // app.ts: the listener, wiring http/, admin/ and ui/
  ['demo'],
  ['cli'],
];

const TOP_LEVEL: Record<string, string> = { 'errors.ts': 'core', 'paths.ts': 'core', 'request-id.ts': 'core', 'service.ts': 'service', 'app.ts': 'app' };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'static' ? [] : sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

export function folderOf(file: string): string {
  const rel = relative(ROUTER, file);
  const slash = rel.indexOf('/');
  return slash === -1 ? (TOP_LEVEL[rel] ?? rel) : rel.slice(0, slash);
}

const IMPORT = /^\s*(?:import|export)\s[^'";]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/gm;

/** Every relative import in router/, as [importing file, imported file] (absolute paths). */
export function importEdges(): Array<[string, string]> {
  const edges: Array<[string, string]> = [];
  for (const file of sourceFiles(ROUTER)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      edges.push([file, resolve(dirname(file), spec)]);
    }
  }
  return edges;
}

function layerOf(folder: string): number {
  const at = LAYERS.findIndex((layer) => layer.includes(folder));
  return at;
}

/** The cycles of a directed graph (its strongly connected components of more than one node). */
export function cycles(edges: Array<[string, string]>): string[][] {
  const next = new Map<string, string[]>();
  for (const [a, b] of edges) {
    if (!next.has(a)) next.set(a, []);
    if (!next.has(b)) next.set(b, []);
    next.get(a)!.push(b);
  }
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('dependency direction', () => {
  const edges = importEdges();

  it('reads the imports (the check is not vacuous)', () => {
    assert.ok(edges.length > 300, `only ${edges.length} imports found`);
    assert.ok(edges.some(([a, b]) => folderOf(a) === 'http' && folderOf(b) === 'proxy'));
  });

  it('every folder of router/ has a layer', () => {
    const folders = new Set(sourceFiles(ROUTER).map(folderOf));
    const missing = [...folders].filter((f) => layerOf(f) === -1);
    assert.deepEqual(missing, [], 'add these to LAYERS in this test and to the README drawing');
  });

  it('a folder imports only from folders on lower layers', () => {
    const against = edges
      .filter(([a, b]) => folderOf(a) !== folderOf(b) && layerOf(folderOf(a)) <= layerOf(folderOf(b)))
      .map(([a, b]) => `${relative(ROUTER, a)} (${folderOf(a)}) imports ${relative(ROUTER, b)} (${folderOf(b)})`);
    assert.deepEqual(against, []);
  });

  it('no two modules import each other, directly or through others', () => {
    const found = cycles(edges).map((c) => c.map((f) => relative(ROUTER, f)).join(' <-> '));
    assert.deepEqual(found, []);
  });

  it('the checks can fail: a layer violation and a cycle are found when present', () => {
    const fake: Array<[string, string]> = [
      [join(ROUTER, 'classify/a.ts'), join(ROUTER, 'http/b.ts')],
      [join(ROUTER, 'http/b.ts'), join(ROUTER, 'http/c.ts')],
      [join(ROUTER, 'http/c.ts'), join(ROUTER, 'http/b.ts')],
    ];
    assert.ok(layerOf(folderOf(fake[0]![0])) <= layerOf(folderOf(fake[0]![1])));
    assert.equal(cycles(fake).length, 1);
  });
});
