// A `$ref` cycle that never steps into the value ({"$ref":"#"}, or two definitions naming each
// other through allOf/anyOf/oneOf/not/if/then/else) makes a validator call itself on the same
// value forever: ajv either overflows the stack compiling it or, for {"$ref":"#"}, compiles
// a function that overflows on every value. Found here, statically, before anything runs.
// Recursion through `properties`, `items` and the like is fine (each step is a smaller value)
// and is not a cycle here. Only local refs ("#", "#/json/pointer") are followed; anything else
// ajv resolves or refuses itself, and a stack overflow it still causes is caught in the worker.

/** Keywords whose subschemas apply to the same value as their parent. */
const SAME_VALUE_ONE = ['not', 'if', 'then', 'else'];
const SAME_VALUE_LIST = ['allOf', 'anyOf', 'oneOf'];
const SAME_VALUE_MAP = ['dependentSchemas', 'dependencies'];
const REF_KEYWORDS = ['$ref', '$recursiveRef', '$dynamicRef'];

type Node = Record<string, unknown>;

function isNode(v: unknown): v is Node {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Resolves "#" or "#/a/b~1c" against the root; undefined for anything else. */
export function resolveLocalRef(root: unknown, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let at: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    let token: string;
    try {
      token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      return undefined;
    }
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, token)) return undefined;
    at = (at as Record<string, unknown>)[token];
  }
  return at;
}

function sameValueEdges(root: unknown, node: Node): Array<{ to: Node; ref: string | null }> {
  const out: Array<{ to: Node; ref: string | null }> = [];
  for (const k of SAME_VALUE_ONE) if (isNode(node[k])) out.push({ to: node[k] as Node, ref: null });
  for (const k of SAME_VALUE_LIST) {
    const list = node[k];
    if (Array.isArray(list)) for (const s of list) if (isNode(s)) out.push({ to: s, ref: null });
  }
  for (const k of SAME_VALUE_MAP) {
    const map = node[k];
    if (isNode(map)) for (const s of Object.values(map)) if (isNode(s)) out.push({ to: s, ref: null });
  }
  for (const k of REF_KEYWORDS) {
    const ref = node[k];
    if (typeof ref !== 'string') continue;
    const target = resolveLocalRef(root, ref);
    if (isNode(target)) out.push({ to: target, ref });
  }
  return out;
}

/** The `$ref` that closes a same-value cycle, or null when there is none. */
export function refCycle(root: unknown): string | null {
  if (!isNode(root)) return null;
  // Every schema object is a possible entry point: collect them (iteratively; depth is bounded already).
  const nodes: Node[] = [];
  const collect: unknown[] = [root];
  while (collect.length > 0) {
    const v = collect.pop();
    if (v === null || typeof v !== 'object') continue;
    if (isNode(v)) nodes.push(v);
    for (const child of Object.values(v)) collect.push(child);
  }
  const state = new Map<Node, 'open' | 'done'>();
  for (const start of nodes) {
    if (state.has(start)) continue;
    // Iterative depth-first search; a node still open when reached again closes a cycle.
    const stack: Array<{ node: Node; edges: Array<{ to: Node; ref: string | null }>; next: number }> = [{ node: start, edges: sameValueEdges(root, start), next: 0 }];
    state.set(start, 'open');
    const refsOnPath: Array<string | null> = [];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next >= top.edges.length) {
        state.set(top.node, 'done');
        stack.pop();
        refsOnPath.pop();
        continue;
      }
      const edge = top.edges[top.next++]!;
      const seen = state.get(edge.to);
      if (seen === 'open') return edge.ref ?? [...refsOnPath].reverse().find((r) => r !== null) ?? '#';
      if (seen === 'done') continue;
      state.set(edge.to, 'open');
      refsOnPath.push(edge.ref);
      stack.push({ node: edge.to, edges: sameValueEdges(root, edge.to), next: 0 });
    }
  }
  return null;
}
