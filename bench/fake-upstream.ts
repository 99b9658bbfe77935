// A deliberately cheap OpenAI-compatible upstream for the benchmark: it never parses JSON and
// answers from prebuilt buffers, so the upstream is not what the bench measures.
//
//   POST /v1/chat/completions  non-stream: one fixed chat.completion with usage
//                              "stream":true: 64 SSE chunks (the first at once, then one every
//                              --interval-ms, or the body's "bench_interval_ms"), usage in the
//                              last chunk, then `data: [DONE]`
//   GET  /health, /v1/models   200 (what the router's health probes ask for)
//
// Usage: tsx bench/fake-upstream.ts [--port 0] [--interval-ms 5]
// Prints one line `{"ready":true,"port":N}` on stdout once listening. Listens on 127.0.0.1 only.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const STREAM_CHUNKS = 64;

const MODEL = 'bench-model';
const COMPLETION = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: MODEL,
    choices: [{ index: 0, message: { role: 'assistant', content: 'Sure. Here is a short answer from the benchmark upstream, about as long as a typical one-paragraph reply to a quick question.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 256, completion_tokens: 32, total_tokens: 288 },
  }),
);
const MODELS = Buffer.from(JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model', owned_by: 'bench' }] }));

function chunk(i: number): Buffer {
  const last = i === STREAM_CHUNKS - 1;
  const event = {
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: MODEL,
    choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: 'tok0 ' } : { content: `tok${i} ` }, finish_reason: last ? 'stop' : null }],
    ...(last ? { usage: { prompt_tokens: 256, completion_tokens: STREAM_CHUNKS, total_tokens: 256 + STREAM_CHUNKS } } : {}),
  };
  return Buffer.from(`data: ${JSON.stringify(event)}\n\n${last ? 'data: [DONE]\n\n' : ''}`);
}
const CHUNKS = Array.from({ length: STREAM_CHUNKS }, (_, i) => chunk(i));
const INTERVAL_FIELD = /"bench_interval_ms"\s*:\s*(\d+)/;

function json(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function stream(res: ServerResponse, intervalMs: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    if (res.destroyed) return;
    res.write(CHUNKS[i]!);
    i++;
    if (i === STREAM_CHUNKS) res.end();
    else timer = setTimeout(next, intervalMs);
  };
  res.once('close', () => clearTimeout(timer));
  next();
}

export function handler(defaultIntervalMs: number) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && (url === '/health' || url === '/v1/models' || url.startsWith('/v1/models?'))) return json(res, 200, MODELS);
    if (req.method !== 'POST' || !url.startsWith('/v1/chat/completions')) return json(res, 404, Buffer.from('{"error":{"message":"not found"}}'));
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      // Both the router (JSON.stringify) and the bench clients write `"stream":true` compactly.
      if (!body.includes('"stream":true')) return json(res, 200, COMPLETION);
      const m = INTERVAL_FIELD.exec(body.toString('latin1', 0, Math.min(body.length, 4096)));
      stream(res, m ? Number(m[1]) : defaultIntervalMs);
    });
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'interval-ms': { type: 'string', default: '5' } } });
  const server = createServer({ keepAliveTimeout: 65_000 }, handler(Number(values['interval-ms'])));
  server.listen(Number(values.port), '127.0.0.1', () => {
    const addr = server.address();
    console.log(JSON.stringify({ ready: true, port: typeof addr === 'object' && addr ? addr.port : 0 }));
  });
  process.once('SIGTERM', () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
