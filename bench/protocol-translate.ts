// CPU cost of translating an upstream chat stream into each client protocol (SPEC §13), per
// upstream chunk, on this machine. Pure computation: no sockets. One chunk = one SSE frame of a
// few characters, as vLLM streams them; the stream ends with a tool call, finish and usage.
//   npx tsx bench/protocol-translate.ts
import { AnthropicStream } from '../router/protocol/anthropic-answer.ts';
import { ChatSseReader } from '../router/protocol/chat-deltas.ts';
import { CompletionsStream } from '../router/protocol/completions.ts';
import { ResponsesStream } from '../router/protocol/responses-answer.ts';

const CHUNKS = 2000;
const ROUNDS = 30;

function frames(): Buffer[] {
  const out: Buffer[] = [];
  const frame = (delta: unknown, finish: string | null = null) => Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
  for (let i = 0; i < CHUNKS - 4; i++) out.push(frame({ content: ` w${i % 97}` }));
  out.push(frame({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'Read', arguments: '' } }] }));
  out.push(frame({ tool_calls: [{ index: 0, function: { arguments: '{"file_path":"/etc/hosts"}' } }] }));
  out.push(frame({}, 'tool_calls'));
  out.push(Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 100, completion_tokens: CHUNKS } })}\n\ndata: [DONE]\n\n`));
  return out;
}

interface Translator {
  push(c: Buffer): string;
  end(): string;
}

const ctx = { model: 'm', stopSequences: [], maxTokens: 0, inputEstimate: 100 };
const makers: Record<string, () => Translator> = {
  'parse only (ChatSseReader)': () => {
    const r = new ChatSseReader();
    return { push: (c) => (r.push(c), ''), end: () => (r.end(), '') };
  },
  'anthropic messages': () => new AnthropicStream(ctx),
  'openai responses': () => new ResponsesStream({ ...ctx, toolNames: new Map(), echo: {} }),
  'legacy completions': () => new CompletionsStream({ model: 'm', includeUsage: true }),
};

const input = frames();
for (const [name, make] of Object.entries(makers)) {
  let bytes = 0;
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t = make();
    const start = process.cpuUsage();
    for (const c of input) bytes += t.push(c).length;
    bytes += t.end().length;
    const used = process.cpuUsage(start);
    samples.push((used.user + used.system) / input.length);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)]!;
  console.log(`${name.padEnd(28)} ${median.toFixed(2)} µs CPU per upstream chunk (median of ${ROUNDS} streams of ${input.length} chunks; ${Math.round(bytes / ROUNDS / input.length)} bytes out per chunk)`);
}
