// The body sent upstream: the client's own JSON text with the top-level "model" value replaced
// by the route's served model name (and, when the context guard clamps, its max_tokens). Re-serialising the parsed body instead would cost a
// JSON.stringify of the whole prompt on every attempt and would alter what the client sent:
// integers past 2^53 (a `seed`, say) lose digits, and number spellings change.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * `json` (a JSON object, already validated) with every top-level "model" string value set to
 * `model`, or undefined when the text cannot be edited safely (a top-level key written with
 * escapes, a non-string model): the caller then serialises the parsed body instead.
 */
export function withModel(json: string, model: string): string | undefined {
  return withTopLevel(json, { model });
}

/** The output-token limits a client may send; the context guard lowers every one present. */
export const MAX_TOKEN_KEYS = ['max_tokens', 'max_completion_tokens'] as const;

/**
 * `json` with the top-level values of `values`' keys replaced (every occurrence). A string
 * replaces a string value, a number a number value; any other shape of an existing value, or a
 * top-level key written with escapes, gives undefined. `model` must be present; other keys are
 * replaced only where the client sent them (never added). One pass over the text, no parse.
 */
export function withTopLevel(json: string, values: Record<string, string | number>): string | undefined {
  const spans: Array<[start: number, end: number, value: string]> = [];
  const n = json.length;
  let depth = 0;
  let expectKey = false;
  let sawModel = !Object.hasOwn(values, 'model');
  let i = 0;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(json, i);
      if (end === -1) return undefined;
      if (depth === 1 && expectKey) {
        const key = json.slice(i + 1, end);
        if (key.includes('\\')) return undefined;
        if (Object.hasOwn(values, key)) {
          const want = values[key]!;
          const at = skipSpace(json, skipSpace(json, end + 1) + 1);
          const valueEnd = typeof want === 'string' ? (json.charCodeAt(at) === QUOTE ? stringEnd(json, at) : -1) : numberEnd(json, at);
          if (valueEnd === -1) return undefined;
          spans.push([at, valueEnd + 1, JSON.stringify(want)]);
          if (key === 'model') sawModel = true;
          i = valueEnd + 1;
          expectKey = false;
          continue;
        }
      }
      expectKey = false;
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */) {
      depth++;
      expectKey = depth === 1;
    } else if (c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
    else if (c === 0x2c /* , */) expectKey = depth === 1;
    i++;
  }
  if (!sawModel || spans.length === 0) return undefined;
  let out = json.slice(0, spans[0]![0]);
  for (let k = 0; k < spans.length; k++) out += spans[k]![2] + json.slice(spans[k]![1], spans[k + 1]?.[0] ?? n);
  return out;
}

/** Index of the last character of the JSON number starting at `start`, or -1 when none starts there. */
function numberEnd(json: string, start: number): number {
  let at = start;
  for (let c = json.charCodeAt(at); (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45; c = json.charCodeAt(++at));
  return at === start ? -1 : at - 1;
}

/** Index of the quote closing the string that opens at `start`, or -1. */
function stringEnd(json: string, start: number): number {
  let at = json.indexOf('"', start + 1);
  while (at !== -1) {
    let slashes = 0;
    for (let k = at - 1; json.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return at;
    at = json.indexOf('"', at + 1);
  }
  return -1;
}

function skipSpace(json: string, from: number): number {
  let i = from;
  for (let c = json.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = json.charCodeAt(++i));
  return i;
}
