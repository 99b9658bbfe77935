// The active policy. A swap is one assignment, so every request sees one whole policy: the
// handler reads `current` once and keeps that object to the end (in-flight requests finish on
// the policy they started with). A rejected file changes nothing.
import { canonicalJson, type CompiledPolicy } from './compile.ts';
import { loadPolicyFile } from './load.ts';

export interface ReloadResult {
  result: 'ok' | 'unchanged';
  hash: string;
  previousHash: string;
  /** Dotted keys that differ: top-level sections, or `routes.<name>` / `buckets.<name>`. */
  changed: string[];
}

export class PolicyStore {
  #current: CompiledPolicy;
  readonly path: string | undefined;
  loadedAt: number;

  constructor(initial: CompiledPolicy, path?: string) {
    this.#current = initial;
    this.path = path;
    this.loadedAt = Date.now();
  }

  get current(): CompiledPolicy {
    return this.#current;
  }

  /** Reads the file again. Throws PolicyError (and keeps the running policy) when invalid. */
  reloadFromFile(): ReloadResult {
    if (this.path === undefined) throw new Error('this router was started without a policy file');
    return this.swap(loadPolicyFile(this.path));
  }

  swap(next: CompiledPolicy): ReloadResult {
    const prev = this.#current;
    if (next.hash === prev.hash) return { result: 'unchanged', hash: prev.hash, previousHash: prev.hash, changed: [] };
    this.#current = next;
    this.loadedAt = Date.now();
    return { result: 'ok', hash: next.hash, previousHash: prev.hash, changed: changedKeys(prev.doc, next.doc) };
  }
}

const PER_ENTRY = new Set(['routes', 'buckets', 'hosts']);

export function changedKeys(a: object, b: object): string[] {
  const out: string[] = [];
  const A = a as Record<string, unknown>;
  const B = b as Record<string, unknown>;
  for (const key of union(A, B)) {
    if (same(A[key], B[key])) continue;
    if (PER_ENTRY.has(key)) {
      const x = (A[key] ?? {}) as Record<string, unknown>;
      const y = (B[key] ?? {}) as Record<string, unknown>;
      for (const name of union(x, y)) if (!same(x[name], y[name])) out.push(`${key}.${name}`);
    } else out.push(key);
  }
  return out;
}

function union(a: object, b: object): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

function same(x: unknown, y: unknown): boolean {
  return canonicalJson(x) === canonicalJson(y);
}
