// Chat upstreams reject a history whose tool calls and results do not pair up ("An assistant
// message with 'tool_calls' must be followed by tool messages responding to each
// 'tool_call_id'"; "No tool call found for function call output"). Agents produce such
// histories when a call was interrupted or a result was pruned. This pass makes them pair:
// a call without a result gets a placeholder result right after its turn's results, and a
// result without a call becomes user text, so nothing the client sent is lost.
import type { ChatMessage } from '../classify/request-facts.ts';

export const MISSING_RESULT = '(no result: the tool call was interrupted)';

function callIds(m: ChatMessage): string[] {
  if (m.role !== 'assistant' || !Array.isArray(m.tool_calls)) return [];
  return (m.tool_calls as Array<{ id?: unknown }>).map((c) => c.id).filter((id): id is string => typeof id === 'string');
}

export function pairToolCalls(messages: ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  let i = 0;
  while (i < messages.length) {
    const m = messages[i]!;
    const ids = callIds(m);
    if (m.role === 'tool') {
      // A result with no call right before it.
      out.push({ role: 'user', content: `Tool result (${String(m.tool_call_id ?? 'unknown call')}): ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}` });
      i++;
      continue;
    }
    out.push(m);
    i++;
    if (ids.length === 0) continue;
    const open = new Set(ids);
    const strays: ChatMessage[] = [];
    while (i < messages.length && messages[i]!.role === 'tool') {
      const r = messages[i]!;
      const id = String(r.tool_call_id ?? '');
      if (open.delete(id)) out.push(r);
      else strays.push(r);
      i++;
    }
    for (const id of ids) if (open.has(id)) out.push({ role: 'tool', tool_call_id: id, content: MISSING_RESULT });
    for (const r of strays) out.push({ role: 'user', content: `Tool result (${String(r.tool_call_id ?? 'unknown call')}): ${typeof r.content === 'string' ? r.content : JSON.stringify(r.content)}` });
  }
  return out;
}
