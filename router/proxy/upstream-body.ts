// The body sent upstream: the client's own JSON text with the top-level "model" value replaced
// by the route's served model name. Re-serialising the parsed body instead would cost a
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
  const spans: number[] = [];
  const n = json.length;
  let depth = 0;
  let expectKey = false;
  let i = 0;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(json, i);
      if (end === -1) return undefined;
      if (depth === 1 && expectKey) {
        const key = json.slice(i + 1, end);
        if (key.includes('\\')) return undefined;
        if (key === 'model') {
          const at = skipSpace(json, skipSpace(json, end + 1) + 1);
          if (json.charCodeAt(at) !== QUOTE) return undefined;
          const valueEnd = stringEnd(json, at);
          if (valueEnd === -1) return undefined;
          spans.push(at, valueEnd + 1);
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
  if (spans.length === 0) return undefined;
  const value = JSON.stringify(model);
  let out = json.slice(0, spans[0]);
  for (let k = 0; k < spans.length; k += 2) out += value + json.slice(spans[k + 1], spans[k + 2] ?? n);
  return out;
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
