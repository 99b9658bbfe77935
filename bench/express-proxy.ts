// Reference only (npm run bench -- --express): the smallest Express gateway that does what the
// router's data plane must at least do — parse the JSON body, set the model, forward with
// undici and relay the answer. No validation, classification, logging or metrics. It shows
// what Express itself costs on the hot path (README, "Performance").
//
// Usage: tsx bench/express-proxy.ts --upstream http://127.0.0.1:PORT [--port 0]
// Prints `{"ready":true,"port":N}` on stdout once listening. Listens on 127.0.0.1 only.
import { pipeline } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import express from 'express';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);

function main(): void {
  const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } });
  if (!values.upstream) throw new Error('--upstream is required');
  const pool = new Pool(values.upstream, { connections: 64, pipelining: 1, keepAliveTimeout: 4_000 });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json({ limit: '32mb' }));
  app.post('/v1/chat/completions', async (req, res) => {
    try {
      const up = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...req.body, model: 'bench-model' }) });
      res.status(up.statusCode);
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) res.setHeader(k, v);
      if (String(up.headers['content-type']).includes('text/event-stream')) res.flushHeaders();
      pipeline(up.body, res, () => undefined);
    } catch (err) {
      res.status(502).json({ error: { message: (err as Error).message } });
    }
  });
  const server = app.listen(Number(values.port), '127.0.0.1', () => {
    const addr = server.address();
    console.log(JSON.stringify({ ready: true, port: typeof addr === 'object' && addr ? addr.port : 0 }));
  });
  server.keepAliveTimeout = 65_000;
  process.once('SIGTERM', () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
