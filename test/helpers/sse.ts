// Helpers for protocol tests: build upstream chat SSE, and read a client's SSE back as events.

/** One chat completions SSE chunk per object, then (unless `done: false`) `data: [DONE]`. */
export function chatSse(chunks: unknown[], opts: { done?: boolean } = {}): string {
  return chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + (opts.done === false ? '' : 'data: [DONE]\n\n');
}

export function chunk(delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'up', choices: [{ index: 0, delta, finish_reason: finish, ...extra }] };
}

export function usageChunk(prompt: number, completion: number): Record<string, unknown> {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'up', choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } };
}

export interface SseEvent {
  event: string | null;
  data: any;
}

export function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const frame of text.split('\n\n')) {
    if (frame.trim() === '') continue;
    let event: string | null = null;
    let data = '';
    for (const line of frame.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    out.push({ event, data: data === '[DONE]' ? '[DONE]' : JSON.parse(data) });
  }
  return out;
}
