// A scripted chat completions upstream on loopback for protocol tests: each request's answer
// comes from a function of its body (a JSON body, an SSE text, or an SSE text cut off
// mid-stream), and every request is recorded. Serves /tokenize as vLLM and llama.cpp do (one
// token per whitespace-separated word, so tests can tell it from the router's estimate); answers
// any GET (health probes) with 200.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Answer =
  | { kind: 'json'; status?: number; body: unknown }
  | { kind: 'sse'; text: string }
  /** Writes the text, then destroys the socket: the upstream dying mid-stream. */
  | { kind: 'cut'; text: string };

export interface ChatUpstream {
  url: string;
  origin: string;
  received: Array<{ path: string; body: any; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startChatUpstream(script: (body: any, path: string) => Answer): Promise<ChatUpstream> {
  const received: ChatUpstream['received'] = [];
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method !== 'POST') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"object":"list","data":[]}');
        return;
      }
      let body: any = null;
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        body = null;
      }
      received.push({ path, body, headers: req.headers });
      if (path === '/tokenize') {
        // vLLM takes messages and answers a count; llama.cpp takes text and answers the ids.
        const text = JSON.stringify(body?.messages ?? body?.content ?? '');
        const ids = text.split(/\s+/).map((_w, i) => i);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(typeof body?.content === 'string' ? { tokens: ids } : { count: ids.length, max_model_len: 131072, tokens: [] }));
        return;
      }
      const a = script(body, path);
      if (a.kind === 'json') {
        const text = JSON.stringify(a.body);
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (a.kind === 'sse') res.end(a.text);
      else res.write(a.text, () => res.socket?.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/v1`,
    origin,
    received,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A whole chat completion. */
export function completion(message: Record<string, unknown>, finish = 'stop', usage = { prompt_tokens: 11, completion_tokens: 7 }): Record<string, unknown> {
  return { id: 'chatcmpl-x', object: 'chat.completion', model: 'up', choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finish }], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } };
}
