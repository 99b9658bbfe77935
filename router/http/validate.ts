// Shape checks for the request bodies the router reads. Hand-written rather than a schema so
// each message names the exact field in OpenAI's own terms (`messages[2].content[0].type`).
// Fields the router does not read pass through to the upstream untouched.
import type { ChatBody } from '../classify/request-facts.ts';
import { RouterError } from '../errors.ts';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const PART_TYPES = new Set(['text', 'image_url', 'input_audio', 'file', 'refusal']);

function bad(param: string, message: string): never {
  throw new RouterError('invalid_request', `${param}: ${message}`, { param });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalType(body: Record<string, unknown>, key: string, type: 'boolean' | 'string' | 'array' | 'object'): void {
  const v = body[key];
  if (v === undefined || v === null) return;
  const ok = type === 'array' ? Array.isArray(v) : type === 'object' ? isObject(v) : typeof v === type;
  if (!ok) bad(key, `must be ${type === 'array' || type === 'object' ? 'an ' : 'a '}${type}`);
}

function optionalPositiveInt(body: Record<string, unknown>, key: string): void {
  const v = body[key];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(key, 'must be a positive integer');
}

function checkPart(part: unknown, at: string): void {
  if (!isObject(part)) bad(at, 'must be an object with a "type"');
  const type = part.type;
  if (typeof type !== 'string') bad(`${at}.type`, 'is required and must be a string');
  if (!PART_TYPES.has(type)) bad(`${at}.type`, `unknown content part type "${type}" (expected one of ${[...PART_TYPES].join(', ')})`);
  if (type === 'text' && typeof part.text !== 'string') bad(`${at}.text`, 'must be a string');
  if (type === 'image_url') {
    const img = part.image_url;
    if (!isObject(img) || typeof img.url !== 'string' || img.url === '') bad(`${at}.image_url.url`, 'must be a non-empty string');
  }
}

export function validateChatBody(body: unknown): ChatBody {
  if (!isObject(body)) bad('body', 'must be a JSON object');
  if (typeof body.model !== 'string' || body.model === '') bad('model', 'is required and must be a non-empty string');
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) bad('messages', 'is required and must be a non-empty array');
  messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) bad(at, 'must be an object');
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) bad(`${at}.role`, `must be one of ${[...ROLES].join(', ')}`);
    const c = m.content;
    if (typeof c === 'string' || c === null || c === undefined) {
      if ((c === null || c === undefined) && m.role !== 'assistant') bad(`${at}.content`, 'is required');
      return;
    }
    if (!Array.isArray(c)) bad(`${at}.content`, 'must be a string or an array of content parts');
    c.forEach((part, j) => checkPart(part, `${at}.content[${j}]`));
  });
  optionalType(body, 'stream', 'boolean');
  optionalType(body, 'tools', 'array');
  optionalType(body, 'response_format', 'object');
  optionalType(body, 'metadata', 'object');
  optionalPositiveInt(body, 'max_tokens');
  optionalPositiveInt(body, 'max_completion_tokens');
  optionalPositiveInt(body, 'n');
  const meta = body.metadata;
  if (isObject(meta) && meta.bucket !== undefined && typeof meta.bucket !== 'string') bad('metadata.bucket', 'must be a string');
  return body as ChatBody;
}

export interface EmbeddingsBody {
  model: string;
  input: string | string[] | number[] | number[][];
  [key: string]: unknown;
}

export function validateEmbeddingsBody(body: unknown): EmbeddingsBody {
  if (!isObject(body)) bad('body', 'must be a JSON object');
  if (typeof body.model !== 'string' || body.model === '') bad('model', 'is required and must be a non-empty string');
  const input = body.input;
  const ok = typeof input === 'string' || (Array.isArray(input) && input.length > 0);
  if (!ok) bad('input', 'is required: a string or a non-empty array');
  return body as EmbeddingsBody;
}
