// A PolicyPlan as commented YAML. Pure. Every string value is written as a JSON string (JSON
// is YAML), so no model name, URL or keyword can change meaning in the file.
import type { PolicyPlan } from './plan.ts';

const q = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** A flat map in flow style: {busy: "a", outage: "b"}. */
function flow(obj: Record<string, unknown>): string {
  return `{${Object.entries(obj)
    .map(([k, v]) => `${k}: ${q(v)}`)
    .join(', ')}}`;
}

/** A list in flow style, wrapped at about 100 columns, each line indented by `indent`. */
function flowList(items: string[], indent: string): string {
  if (items.length === 0) return '[]';
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    const next = line === '' ? item : `${line}, ${item}`;
    if (line !== '' && indent.length + next.length > 100) {
      lines.push(`${line},`);
      line = item;
    } else line = next;
  }
  lines.push(`${line},`);
  return `[\n${lines.map((l) => `${indent}  ${l}`).join("\n")}\n${indent}  ]`;
}

/** Any value in flow style: strings as JSON strings, lists in brackets, maps in braces. */
function flowValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(flowValue).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v)
      .map(([k, x]) => `${k}: ${flowValue(x)}`)
      .join(', ')}}`;
  }
  return q(v);
}

function term(t: unknown): string {
  if (typeof t === 'string') return q(t);
  const o = t as { term: string; weight?: number };
  return o.weight === undefined ? `{term: ${q(o.term)}}` : `{term: ${q(o.term)}, weight: ${o.weight}}`;
}

export function renderPolicy(plan: PolicyPlan, file: string): string {
  const d = plan.doc;
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);
  push(
    '# homelab-router policy, written by `homelab-router init` from what each server reported.',
    `#   check it:  npx homelab-router check ${file}`,
    `#   run it:    npx homelab-router serve --policy ${file}`,
    '# Every key is explained in the README ("Policy reference"). A value marked "guessed" was not',
    '# reported by the server: set it to what the server really runs with. The buckets and their',
    '# keywords are the shipped routing_policy.yaml\'s; only their routes were chosen here.',
    'version: 1',
    '',
    'server:',
    `  listen: ${q(d.server.listen)}            # loopback; anything else is warned about at start`,
    `  max_body_bytes: ${d.server.max_body_bytes}       # 32 MiB`,
    `  request_timeout_ms: ${d.server.request_timeout_ms}     # one deadline over every attempt of a request`,
    `  stream_idle_timeout_ms: ${d.server.stream_idle_timeout_ms}  # a stream silent this long after its first byte is ended`,
    '',
    'logging:',
    `  prompts: ${d.logging.prompts}               # true logs the scored prompt text`,
    '',
    '# How a request\'s job is read: the shipped policy\'s settings ("How a request is routed").',
    'classifier:',
    `  scope: ${q(d.classifier.scope)}`,
    `  lookback_turns: ${d.classifier.lookback_turns}`,
    `  lookback_below: ${d.classifier.lookback_below}`,
    `  new_topic: ${flowList((d.classifier.new_topic as string[]).map(q), '  ')}`,
    `  device_tools: [${(d.classifier.device_tools as string[]).map(q).join(', ')}]`,
    `  chat_tools: [${(d.classifier.chat_tools as string[]).map(q).join(', ')}]`,
    `  tie_break: [${d.classifier.tie_break.map(q).join(', ')}]`,
    `  default_bucket: ${q(d.classifier.default_bucket)}`,
    `  image_bucket: ${q(d.classifier.image_bucket)}`,
    `  scan_chars: ${d.classifier.scan_chars}`,
    `  parts: ${flowValue(d.classifier.parts)}`,
    `  system: ${flowValue(d.classifier.system)}`,
    `  similarity: ${flowValue(d.classifier.similarity)}`,
    '',
    `size_tiers: ${flow(d.size_tiers)}   # estimated prompt tokens`,
    '',
    `health: ${flow(d.health)}`,
    '',
    'routes:',
  );
  for (const [name, r] of Object.entries<any>(d.routes)) {
    const g = plan.guesses[name] ?? {};
    const guess = (key: string) => (g[key] ? [`    # ${g[key]}`] : []);
    push(
      ...(plan.routeNotes[name] ?? []).map((l) => `  # ${l}`),
      `  ${name}:`,
      `    url: ${q(r.url)}`,
      `    model: ${q(r.model)}`,
      `    runtime: ${r.runtime}`,
      ...guess('vision'),
      `    vision: ${r.vision}`,
      ...guess('context_tokens'),
      `    context_tokens: ${r.context_tokens}`,
      ...guess('slots'),
      `    slots: ${r.slots}`,
      `    queue: ${r.queue}                       # requests that may wait for a slot, up to queue_timeout_ms`,
      `    queue_timeout_ms: ${r.queue_timeout_ms}`,
      `    timeout_ms: ${r.timeout_ms}              # connect + time to first byte`,
      ...(r.api_key_env ? [`    api_key_env: ${q(r.api_key_env)}   # the bearer key is read from this variable when the router starts`] : []),
      `    aliases: [${(r.aliases as string[]).map(q).join(', ')}]`,
      `    fallback: ${r.fallback === 'terminal' ? 'terminal' : flow(r.fallback)}`,
      '    # init knows no SSH access: the watchdog never restarts it. See the README to add recovery.',
      `    recovery: ${flow(r.recovery)}`,
      '',
    );
  }
  push('buckets:');
  for (const [name, b] of Object.entries<any>(d.buckets)) {
    if (plan.bucketNotes[name]) push(`  # ${plan.bucketNotes[name]}`);
    push(`  ${name}:`);
    if (b.description) push(`    description: ${q(b.description)}`);
    if (b.keywords) push(`    keywords: ${flowList((b.keywords as unknown[]).map(term), '    ')}`);
    if (b.examples) push('    examples:', ...(b.examples as string[]).map((e) => `      - ${q(e)}`));
    if (b.signals) push(`    signals: ${flow(b.signals)}`);
    if (b.on_code) push(`    on_code: ${q(b.on_code)}`);
    push(`    route: ${q(b.route)}`);
    for (const key of ['medium', 'large', 'image_route']) if (b[key] !== undefined) push(`    ${key}: ${q(b[key])}`);
    if (b.fail_closed) push('    fail_closed: true', `    escalate_to: ${q(b.escalate_to)}`);
    push('');
  }
  return out.join('\n');
}
