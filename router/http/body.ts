// Reads a request body within the policy's limit and parses it as JSON. Every failure is a
// RouterError (413 / 400) raised before any routing work or upstream call.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { RouterError } from '../errors.ts';

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        // Stop reading: the rest is never buffered. The response closes the connection.
        req.pause();
        reject(tooLarge(maxBytes));
        return;
      }
      parts.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new RouterError('invalid_request', `could not read the request body: ${err.message}`));
    };
    const onClose = () => {
      if (req.readableEnded) return;
      cleanup();
      reject(new RouterError('invalid_request', 'the client closed the connection before the body was complete'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(maxBytes: number): RouterError {
  return new RouterError('payload_too_large', `The request body is larger than server.max_body_bytes (${maxBytes} bytes).`);
}

export function parseJson(buf: Buffer): unknown {
  if (buf.length === 0) throw new RouterError('invalid_request', 'The request body is empty; send a JSON object.');
  if (!isUtf8(buf)) throw new RouterError('invalid_request', 'The request body is not valid UTF-8.');
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new RouterError('invalid_request', `The request body is not valid JSON: ${(err as Error).message}`);
  }
}
