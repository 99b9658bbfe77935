// `tools.sanitize` (SPEC §13): tool parameter schemas with the keywords grammar engines reject
// removed. llama.cpp's and vLLM's (xgrammar) constrained decoders fail on `propertyNames`,
// regex `pattern`s, `format`s and very large `maxLength`s, and `$schema` means nothing to
// them; Claude Code sends all of these. The schema keeps its structure and its types.

const DROPPED = new Set(['$schema', '$id', 'propertyNames', 'pattern', 'patternProperties', 'format', 'contentEncoding', 'contentMediaType']);
const MAX_LENGTH_KEPT = 1000;

export function sanitizeSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(sanitizeSchema);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (DROPPED.has(k)) continue;
    if (k === 'maxLength' && typeof v === 'number' && v > MAX_LENGTH_KEPT) continue;
    // Under `properties` the keys are property names, not keywords: keep them all.
    if (k === 'properties' && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, sanitizeSchema(s)]));
      continue;
    }
    out[k] = sanitizeSchema(v);
  }
  return out;
}

/** Chat `tools` with each function's parameters sanitised. */
export function sanitizeTools(tools: unknown[]): unknown[] {
  return tools.map((t) => {
    const fn = (t as { function?: { parameters?: unknown } }).function;
    if (!fn || fn.parameters === undefined) return t;
    return { ...(t as object), function: { ...fn, parameters: sanitizeSchema(fn.parameters) } };
  });
}
