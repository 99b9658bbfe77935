// `check` and `explain`: policy tools that need no running router.
import { readFileSync } from 'node:fs';
import { requestFacts, type ChatBody } from '../classify/request-facts.ts';
import { decide } from '../decide/engine.ts';
import { explainBody } from '../http/chat.ts';
import { loadPolicyFile, PolicyError } from '../policy/load.ts';

export function check(path: string): number {
  try {
    const p = loadPolicyFile(path);
    console.log(`${path}: valid (${p.routeNames.length} routes, ${p.bucketNames.length} buckets, ${p.hash})`);
    return 0;
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    for (const line of err.errors) console.error(line);
    console.error(`${path}: ${err.errors.length} error${err.errors.length === 1 ? '' : 's'}`);
    return 1;
  }
}

// A 1x1 PNG: enough for the decision, which only needs to know an image is present.
const PIXEL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

export function explain(path: string, prompt: string, opts: { image: boolean; json: boolean; maxTokens?: string | undefined; bodyFile?: string | undefined }): number {
  const maxTokens = opts.maxTokens === undefined ? undefined : Number(opts.maxTokens);
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens > 0)) {
    console.error(`--max-tokens needs a positive whole number, got "${opts.maxTokens}"`);
    return 2;
  }
  let fileBody: ChatBody | undefined;
  if (opts.bodyFile !== undefined) {
    try {
      fileBody = JSON.parse(readFileSync(opts.bodyFile, 'utf8')) as ChatBody;
      if (!Array.isArray(fileBody?.messages)) throw new Error('no "messages" array');
    } catch (err) {
      console.error(`--body ${opts.bodyFile}: ${(err as Error).message}`);
      return 2;
    }
  }
  if (fileBody === undefined && prompt.trim() === '') {
    console.error('explain needs a prompt: homelab-router explain "refactor this function"');
    return 2;
  }
  let policy;
  try {
    policy = loadPolicyFile(path);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    console.error(err.message);
    return 1;
  }
  const content = opts.image ? [{ type: 'text', text: prompt }, { type: 'image_url', image_url: { url: PIXEL } }] : prompt;
  const body = fileBody ?? ({ model: 'homelab/auto', messages: [{ role: 'user', content }] } as ChatBody);
  body.model ??= 'homelab/auto';
  if (maxTokens !== undefined) body.max_tokens = maxTokens;
  const c = policy.doc.classifier;
  const d = decide({ facts: requestFacts(body, c.scope, c.lookback_turns) }, policy, () => ({ healthy: true, drained: false }));
  const view = explainBody(d, { policy });
  if (opts.json) {
    console.log(JSON.stringify(view, null, 2));
    return 0;
  }
  console.log(`route      ${d.route ?? '(none)'}`);
  console.log(`bucket     ${d.bucket}`);
  console.log(`reason     ${d.reason}`);
  console.log(`image      ${d.hasImage ? 'yes' : 'no'}    tokens ~${d.estimatedTokens} (${d.sizeTier})`);
  if (d.maxTokensSent !== undefined) console.log(`max_tokens ${d.requestedMaxTokens} asked, ${d.maxTokensSent} sent (context guard: ${d.route} holds no more)`);
  console.log(`fallback   busy: ${d.fallbackChain.busy.join(' > ') || '(none: 503)'}    outage: ${d.fallbackChain.outage.join(' > ') || '(none: 503)'}`);
  console.log('');
  console.log('score   bucket           matched');
  const rows = Object.entries(d.scores).sort((a, b) => b[1] - a[1]);
  for (const [bucket, score] of rows) {
    if (score === 0 && !d.matched[bucket]) continue;
    console.log(`${score.toFixed(2).padStart(5)}   ${bucket.padEnd(16)} ${(d.matched[bucket] ?? []).join(', ')}`);
  }
  if (rows.every(([, s]) => s === 0)) console.log(`(nothing matched: default bucket "${c.default_bucket}")`);
  if (d.classified) {
    console.log('');
    console.log(`scored     turn ${d.classified.turn === 0 ? '0 (last user message)' : `-${d.classified.turn} (lookback)`}, ${d.classified.part}: "${d.classified.text}"`);
    for (const x of d.classified.nearest) console.log(`nearest    ${x.similarity.toFixed(2)}  ${x.bucket.padEnd(16)} "${x.example}"`);
  }
  if (d.error) console.log(`\nerror: ${d.error.message}`);
  return 0;
}
