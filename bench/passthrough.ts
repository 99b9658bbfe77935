// The reference proxies: node:http in, one undici Pool out. No parsing, no routing, no logs,
// no metrics: the floor for any Node gateway built on undici.
//
//   default     the request body streamed through unread and the response piped back: the
//               minimal proxy, and the denominator of the router's budget
//   --buffered  the request body read whole and sent with its length, a JSON answer read whole
//               and sent with its length (one write each way, no chunked encoding); SSE is
//               still piped as it arrives. What a proxy that must see the body (as the router
//               must, to route it) pays at least: on this machine it is 2.3-2.5× cheaper per
//               request than piping, because a piped answer goes out as chunked writes.
//   --classify POLICY  the buffered proxy that also parses each JSON body and classifies it with
//               POLICY's classifier (request facts, the term scan, scoring), then forwards the
//               body as it came: the least CPU any proxy that routes on the prompt spends, before
//               it decides, admits, fails over, logs or counts anything
//   --tcp       no HTTP at all: each client connection gets its own upstream connection and
//               the bytes are copied both ways as they arrive. What the two extra loopback hops
//               through a Node process cost, before any HTTP parsing or writing.
//
// Usage: tsx bench/passthrough.ts --upstream http://127.0.0.1:PORT [--port 0] [--connections 64] [--buffered | --classify POLICY | --tcp]
// Prints `{"ready":true,"port":N}` on stdout once listening. Listens on 127.0.0.1 only.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { requestFacts, type ChatBody } from '../router/classify/request-facts.ts';
import { loadPolicyFile } from '../router/policy/load.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'host']);

function main(): void {
  const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' }, connections: { type: 'string', default: '64' }, buffered: { type: 'boolean', default: false }, classify: { type: 'string' }, tcp: { type: 'boolean', default: false } } });
  if (!values.upstream) throw new Error('--upstream is required');
  const onBody = values.classify === undefined ? undefined : classifier(values.classify);
  const server = values.tcp ? tcpForwarder(new URL(values.upstream)) : httpProxy(values.upstream, Number(values.connections), values.buffered || onBody !== undefined, onBody);
  server.listen(Number(values.port), '127.0.0.1', () => {
    const addr = server.address();
    console.log(JSON.stringify({ ready: true, port: typeof addr === 'object' && addr ? addr.port : 0 }));
  });
  process.once('SIGTERM', () => process.exit(0));
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
/** What the proxy does with a whole request body before it forwards it. */
type BodyWork = (body: Buffer) => void;

function httpProxy(upstream: string, connections: number, readWhole: boolean, onBody?: BodyWork): Server {
  const pool = new Pool(upstream, { connections, pipelining: 1, keepAliveTimeout: 4_000 });
  return createServer({ keepAliveTimeout: 65_000 }, readWhole ? buffered(pool, onBody) : piped(pool));
}

/** Parse the body and classify it with the policy's classifier, as a router must before deciding. */
function classifier(policyPath: string): BodyWork {
  const policy = loadPolicyFile(policyPath);
  const { scope, lookback_turns } = policy.doc.classifier;
  // A use of each result, so the work cannot be optimised away.
  let buckets = 0;
  return (bytes) => {
    const body = JSON.parse(bytes.toString('utf8')) as ChatBody;
    if (Array.isArray(body.messages)) buckets += policy.classifier.classify(requestFacts(body, scope, lookback_turns)).bucket.length;
  };
}

/** Bytes from one socket to the other as they arrive, pausing while the other is full. */
function copy(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
}

function tcpForwarder(upstream: URL): Server {
  return createTcpServer({ noDelay: true }, (client: Socket) => {
    const up = connect({ host: upstream.hostname, port: Number(upstream.port), noDelay: true });
    copy(client, up);
    copy(up, client);
    const close = () => {
      client.destroy();
      up.destroy();
    };
    client.once('close', close);
    up.once('close', close);
    client.on('error', close);
    up.on('error', close);
  });
}

function forwardHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function badGateway(res: ServerResponse, err: Error): void {
  if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: err.message } }));
}

function piped(pool: Pool): Handler {
  return (req, res) => {
    pool
      .request({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers: forwardHeaders(req.headers), body: req.method === 'GET' || req.method === 'HEAD' ? null : req })
      .then((up) => {
        res.writeHead(up.statusCode, forwardHeaders(up.headers));
        // SSE headers go out at once, as any streaming proxy must; a JSON answer goes out whole.
        if (String(up.headers['content-type']).includes('text/event-stream')) res.flushHeaders();
        pipeline(up.body, res, () => undefined);
      })
      .catch((err: Error) => badGateway(res, err));
  };
}

function buffered(pool: Pool, onBody?: BodyWork): Handler {
  return (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const headers = forwardHeaders(req.headers);
      const body = req.method === 'GET' || req.method === 'HEAD' ? null : Buffer.concat(parts);
      if (body && onBody) {
        try {
          onBody(body);
        } catch (err) {
          return badGateway(res, err as Error);
        }
      }
      pool
        .request({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body })
        .then(async (up) => {
          const out = forwardHeaders(up.headers);
          if (String(up.headers['content-type']).includes('text/event-stream')) {
            res.writeHead(up.statusCode, out);
            res.flushHeaders();
            pipeline(up.body, res, () => undefined);
            return;
          }
          const body = Buffer.from(await up.body.arrayBuffer());
          out['content-length'] = String(body.length);
          res.writeHead(up.statusCode, out);
          res.end(body);
        })
        .catch((err: Error) => badGateway(res, err));
    });
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
