// Key secrets: how a key is made, what is kept of it, and how a request presents it.
// A key is `hlr_` + 43 base62 characters (≥ 256 bits). Only its SHA-256 and a short display
// prefix are stored; 256 random bits need no slow hash.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const KEY_PREFIX = 'hlr_';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 43 base62 characters hold 43 · log2(62) ≈ 256.1 bits. */
const SECRET_CHARS = 43;
/** Characters shown in lists: `hlr_` and the first 6 of the secret. */
const DISPLAY_CHARS = KEY_PREFIX.length + 6;

/** A fresh key: `hlr_` + 43 base62 characters drawn without modulo bias. */
export function newKeySecret(): string {
  let out = KEY_PREFIX;
  while (out.length < KEY_PREFIX.length + SECRET_CHARS) {
    for (const b of randomBytes(64)) {
      // 248 = 4 · 62: bytes at or above it are dropped so every character is equally likely.
      if (b < 248 && out.length < KEY_PREFIX.length + SECRET_CHARS) out += BASE62[b % 62];
    }
  }
  return out;
}

/** The hex SHA-256 of a key: what the database and the policy hold. */
export function keyHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function displayPrefix(secret: string): string {
  return secret.slice(0, DISPLAY_CHARS);
}

/** Compares two hex digests in constant time (equal lengths by construction). */
export function hashesEqual(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/** A policy's `key_sha256`, written bare or as `sha256:<hex>`, normalised to lower-case hex. */
export function normaliseHash(written: string): string | null {
  const hex = written.startsWith('sha256:') ? written.slice(7) : written;
  return /^[0-9a-fA-F]{64}$/.test(hex) ? hex.toLowerCase() : null;
}

/**
 * The credential a request presents: `Authorization: Bearer K`, `x-api-key: K` (Anthropic
 * clients) or the password of `Authorization: Basic base64(user:K)`. Undefined when none.
 */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth !== undefined && auth !== '') {
    const space = auth.indexOf(' ');
    const scheme = space === -1 ? auth : auth.slice(0, space);
    const value = space === -1 ? '' : auth.slice(space + 1).trim();
    if (scheme.length === 6 && scheme.toLowerCase() === 'bearer' && value !== '') return value;
    if (scheme.length === 5 && scheme.toLowerCase() === 'basic' && value !== '') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const password = colon === -1 ? '' : decoded.slice(colon + 1);
      if (password !== '') return password;
    }
  }
  const x = headers['x-api-key'];
  const apiKey = Array.isArray(x) ? x[0] : x;
  return apiKey !== undefined && apiKey.trim() !== '' ? apiKey.trim() : undefined;
}
