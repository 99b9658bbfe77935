// What a simulated model answers when the request asks for structure, as a real engine with
// guided decoding does: a `json_schema` response format gets JSON that the schema accepts, and
// a request with `tools` (unless tool_choice is "none") gets a tool call whose arguments match
// the tool's parameters. Pure functions of the request body.

export interface SimToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

type Schema = Record<string, any>;

/** A small instance the schema accepts: required and listed properties, enums' first value, minimums. */
export function sampleFor(schema: unknown, depth = 0): unknown {
  if (schema === null || typeof schema !== 'object' || depth > 8) return null;
  const s = schema as Schema;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  if (Array.isArray(s.anyOf) && s.anyOf.length > 0) return sampleFor(s.anyOf[0], depth + 1);
  if (Array.isArray(s.oneOf) && s.oneOf.length > 0) return sampleFor(s.oneOf[0], depth + 1);
  if (Array.isArray(s.allOf) && s.allOf.length > 0) return sampleFor(Object.assign({}, ...s.allOf), depth + 1);
  const type = Array.isArray(s.type) ? (s.type.find((t: unknown) => t !== 'null') ?? s.type[0]) : s.type;
  switch (type ?? (s.properties ? 'object' : s.items ? 'array' : undefined)) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props: Record<string, unknown> = s.properties ?? {};
      for (const [key, sub] of Object.entries(props)) out[key] = sampleFor(sub, depth + 1);
      for (const key of Array.isArray(s.required) ? s.required : []) if (!(key in out)) out[key] = '';
      return out;
    }
    case 'array':
      return Array.from({ length: Math.min(Math.max(Number(s.minItems) || 0, 1), Number(s.maxItems ?? Infinity)) }, () => sampleFor(s.items ?? {}, depth + 1));
    case 'string': {
      const text = s.format === 'date-time' ? '2025-01-01T00:00:00Z' : 'simulated';
      const min = Number(s.minLength) || 0;
      const padded = text.length >= min ? text : text.padEnd(min, 'x');
      return s.maxLength !== undefined ? padded.slice(0, Number(s.maxLength)) : padded;
    }
    case 'integer':
    case 'number':
      return s.minimum ?? (s.exclusiveMinimum !== undefined ? Number(s.exclusiveMinimum) + 1 : 0);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return {};
  }
}

/** Content for a `response_format: json_schema` request, or null when the request does not ask for one. */
export function schemaReply(body: any): string | null {
  const rf = body?.response_format;
  if (rf?.type === 'json_schema') return JSON.stringify(sampleFor(rf.json_schema?.schema ?? {}));
  if (rf?.type === 'json_object') return '{}';
  return null;
}

/** The tool call a request with tools gets, or null (no tools, or tool_choice "none"). */
export function toolCallFor(body: any, id: string): SimToolCall | null {
  const tools: any[] = Array.isArray(body?.tools) ? body.tools.filter((t: any) => t?.type === 'function' && typeof t.function?.name === 'string') : [];
  if (tools.length === 0 || body?.tool_choice === 'none') return null;
  const named = body?.tool_choice?.function?.name;
  const tool = tools.find((t) => t.function.name === named) ?? tools[0];
  return { id: `call_${id}`, type: 'function', function: { name: tool.function.name, arguments: JSON.stringify(sampleFor(tool.function.parameters ?? { type: 'object' })) } };
}
