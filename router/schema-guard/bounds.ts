// Size, depth and keyword bounds of a client's JSON Schema (fail_closed.max_schema_*), checked
// before anything recursive touches it: JSON.stringify and ajv's compiler both recurse, and a
// 20,000-deep schema overflows the stack in either. One iterative walk that stops at the first
// bound it crosses, so a 100,000-property schema costs no more than one at the bound.
import type { FailClosedLimits } from '../policy/types.ts';

export type SchemaBounds = Pick<FailClosedLimits, 'max_schema_bytes' | 'max_schema_depth' | 'max_schema_keywords'>;

/** The first bound `schema` crosses, as a message naming the policy key; null when within all. */
export function schemaBoundsError(schema: unknown, b: SchemaBounds): string | null {
  const stack: Array<{ value: unknown; depth: number }> = [{ value: schema, depth: 1 }];
  let keywords = 0;
  // A lower estimate of the JSON text's length: exact for ASCII without escapes.
  let bytes = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (value === null || typeof value !== 'object') {
      bytes += typeof value === 'string' ? value.length + 2 : String(value).length;
    } else {
      if (depth > b.max_schema_depth) return depthError(b);
      if (Array.isArray(value)) {
        keywords += value.length;
        bytes += 2 + value.length;
        if (keywords > b.max_schema_keywords) return keywordError(b);
        for (const item of value) stack.push({ value: item, depth: depth + 1 });
      } else {
        const keys = Object.keys(value);
        keywords += keys.length;
        if (keywords > b.max_schema_keywords) return keywordError(b);
        bytes += 2;
        for (const k of keys) {
          bytes += k.length + 4;
          stack.push({ value: (value as Record<string, unknown>)[k], depth: depth + 1 });
        }
      }
    }
    if (bytes > b.max_schema_bytes) return bytesError(b);
  }
  return null;
}

/** The exact check, on the JSON text (only built once the walk passed, so it cannot overflow). */
export function schemaTextError(text: string, b: SchemaBounds): string | null {
  return Buffer.byteLength(text) > b.max_schema_bytes ? bytesError(b) : null;
}

function depthError(b: SchemaBounds): string {
  return `nests deeper than fail_closed.max_schema_depth (${b.max_schema_depth} levels of objects and arrays)`;
}

function keywordError(b: SchemaBounds): string {
  return `has more than fail_closed.max_schema_keywords (${b.max_schema_keywords} keywords, property names and array items)`;
}

function bytesError(b: SchemaBounds): string {
  return `is larger than fail_closed.max_schema_bytes (${b.max_schema_bytes} bytes of JSON)`;
}
