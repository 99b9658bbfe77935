// Runs a Lua script by its SHA-1, sending the source only when the server does not have it
// yet (after a restart or a SCRIPT FLUSH): one round trip in the usual case.
import { createHash } from 'node:crypto';
import type { RedisClientType } from '@redis/client';

const shas = new Map<string, string>();

function sha1(script: string): string {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  return sha;
}

export async function runScript(client: RedisClientType, script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
  const argv = args.map(String);
  try {
    return await client.sendCommand(['EVALSHA', sha1(script), String(keys.length), ...keys, ...argv]);
  } catch (err) {
    if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
    return client.sendCommand(['EVAL', script, String(keys.length), ...keys, ...argv]);
  }
}
