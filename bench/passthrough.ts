// The reference proxy: node:http in, one undici Pool out, the request body streamed through
// unread and the response piped back. No parsing, no routing, no logs, no metrics: the floor
// for any Node gateway built on undici, and the denominator of the router's budget.
//
// Usage: tsx bench/passthrough.ts --upstream http://127.0.0.1:PORT [--port 0] [--connections 64]
// Prints `{"ready":true,"port":N}` on stdout once listening. Listens on 127.0.0.1 only.
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'host']);

function main(): void {
  const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' }, connections: { type: 'string', default: '64' } } });
  if (!values.upstream) throw new Error('--upstream is required');
  const pool = new Pool(values.upstream, { connections: Number(values.connections), pipelining: 1, keepAliveTimeout: 4_000 });

  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    pool
      .request({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req })
      .then((up) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
        res.writeHead(up.statusCode, out);
        // SSE headers go out at once, as any streaming proxy must; a JSON answer goes out whole.
        if (String(up.headers['content-type']).includes('text/event-stream')) res.flushHeaders();
        pipeline(up.body, res, () => undefined);
      })
      .catch((err: Error) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: err.message } }));
      });
  });
  server.listen(Number(values.port), '127.0.0.1', () => {
    const addr = server.address();
    console.log(JSON.stringify({ ready: true, port: typeof addr === 'object' && addr ? addr.port : 0 }));
  });
  process.once('SIGTERM', () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
