// Chat-completion objects the router builds itself: the fail-closed synthetic envelope, and
// a finished completion re-sent as SSE to a client that asked for a stream.

interface Completion {
  id?: string;
  created?: number;
  model?: string;
  choices?: Array<{ index?: number; message?: { role?: string; content?: unknown; tool_calls?: unknown }; finish_reason?: string | null }>;
  usage?: unknown;
  [key: string]: unknown;
}

export function syntheticCompletion(requestId: string, envelope: Record<string, unknown>): Completion {
  return {
    id: `chatcmpl-synthetic-${requestId}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: 'homelab-router/synthetic',
    choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify(envelope) }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  };
}

export function completionAsSse(c: Completion, streamOptions: unknown): string {
  const base = { id: c.id, object: 'chat.completion.chunk', created: c.created, model: c.model };
  const events: unknown[] = [];
  for (const [i, choice] of (c.choices ?? []).entries()) {
    const index = choice.index ?? i;
    const msg = choice.message ?? {};
    events.push({ ...base, choices: [{ index, delta: { role: msg.role ?? 'assistant', content: msg.content ?? '', ...(msg.tool_calls ? { tool_calls: msg.tool_calls } : {}) }, finish_reason: null }] });
    events.push({ ...base, choices: [{ index, delta: {}, finish_reason: choice.finish_reason ?? 'stop' }] });
  }
  const wantsUsage = typeof streamOptions === 'object' && streamOptions !== null && (streamOptions as { include_usage?: unknown }).include_usage === true;
  if (wantsUsage && c.usage) events.push({ ...base, choices: [], usage: c.usage });
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
}
