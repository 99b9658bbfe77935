// The start of an upstream body that is read only to be judged: an error answer before
// failover, a health probe's answer. An upstream can send such a body without end (or
// trickle it); the read stops at `cap` bytes or after `timeoutMs`, whichever comes first,
// and the body is destroyed then, which frees its connection.
import type { Readable } from 'node:stream';

export interface BodyHead {
  bytes: Buffer;
  /** The whole body arrived within the bounds. */
  complete: boolean;
  /** Why it is incomplete: over the cap, out of time, or cut off. */
  why?: string;
}

export function readHead(body: Readable, cap: number, timeoutMs: number): Promise<BodyHead> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (complete: boolean, why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      body.on('error', () => undefined);
      if (!complete) body.destroy();
      const bytes = Buffer.concat(parts, Math.min(size, cap));
      resolve(why === undefined ? { bytes, complete } : { bytes, complete, why });
    };
    const onData = (chunk: Buffer) => {
      const room = cap - size;
      parts.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += chunk.length;
      if (size > cap) finish(false, `body longer than ${cap} bytes`);
    };
    const onEnd = () => finish(true);
    const onError = (err: Error & { code?: string }) => finish(false, `body cut off after ${size} bytes (${err.code ?? err.name}: ${err.message})`);
    const onClose = () => setImmediate(() => finish(false, `body closed after ${size} bytes`));
    const timer = setTimeout(() => finish(false, `body not finished within ${timeoutMs} ms (${size} bytes)`), Math.max(1, timeoutMs));
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
  });
}
