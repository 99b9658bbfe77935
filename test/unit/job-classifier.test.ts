// Scoring the request's job: which part of a message is the instruction (parts), the request's
// structure (forced tool_choice, agent loops), words in spaceless scripts, and the similarity
// stage over example prompts. Small inline policies for the mechanisms, the shipped policy for
// the client shapes of issue 13.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { splitParts, type PartsConfig } from '../../router/classify/parts.ts';
import { requestFacts, type ChatBody } from '../../router/classify/request-facts.ts';
import { ExampleIndex } from '../../router/classify/similarity.ts';
import { decide } from '../../router/decide/engine.ts';
import { explainBody } from '../../router/http/chat.ts';
import { loadPolicyFile, parsePolicyText } from '../../router/policy/load.ts';
import type { CompiledPolicy } from '../../router/policy/compile.ts';

const shipped = loadPolicyFile(fileURLToPath(new URL('../../routing_policy.yaml', import.meta.url)));
const allUp = () => ({ healthy: true, drained: false });

function route(policy: CompiledPolicy, body: ChatBody | string) {
  const b: ChatBody = typeof body === 'string' ? { model: 'homelab/auto', messages: [{ role: 'user', content: body }] } : body;
  const c = policy.doc.classifier;
  return decide({ facts: requestFacts(b, c.scope, c.lookback_turns) }, policy, allUp);
}

const PARTS: PartsConfig = { instruction_tags: ['user_query', 'task'], quoted_tags: ['chat_history', 'document'], fences: true, quoted_weight: 0.25, quoted_max: 1.5, forced_tool_input: true };

describe('parts: instruction and quoted material', () => {
  it('an instruction tag makes its contents the instruction and the rest quoted', () => {
    const p = splitParts('<attached_files>refactor the parser</attached_files>\n<user_query>\nadd a reset link\n</user_query>', PARTS);
    assert.equal(p.instruction.trim(), 'add a reset link');
    assert.match(p.quoted, /refactor the parser/);
    assert.equal(p.rule, 'instruction_tag:user_query');
  });

  it('quoted tags and fences are taken out of the instruction', () => {
    const p = splitParts('Generate a title.\n<chat_history>\nUSER: rust borrow checker\n</chat_history>\nand ```fn main() {}``` end', PARTS);
    assert.doesNotMatch(p.instruction, /rust|fn main/);
    assert.match(p.instruction, /Generate a title/);
    assert.match(p.quoted, /rust borrow checker/);
    assert.match(p.quoted, /fn main/);
    assert.equal(p.rule, 'quoted:chat_history,```');
  });

  it('a fence inside a quoted tag is quoted material, not the instruction\'s own code', () => {
    assert.equal(splitParts('Suggest follow-ups.\n<chat_history>\n```py\nx = 1\n```\n</chat_history>', PARTS).fenced, false);
    assert.equal(splitParts('Why does this fail?\n```py\nx = 1\n```', PARTS).fenced, true);
    assert.equal(splitParts('<user_query>why?\n```log\nerror\n```</user_query>', PARTS).fenced, true);
  });

  it('a fence around prose is quoted text, not code: Open WebUI quotes the message to pick an emoji for', () => {
    assert.equal(splitParts('Pick one emoji.\n\nMessage: ```the build finally passed after hours of debugging```', PARTS).fenced, false);
    assert.equal(splitParts('Why?\n```\nconst x = f(y);\n```', PARTS).fenced, true);
    const facts = requestFacts({ model: 'homelab/auto', messages: [{ role: 'user', content: 'Message: ```what a lovely morning```' }] }, 'last_user', 2);
    assert.equal(facts.signals.code_block, false);
  });

  it('an unclosed tag runs to the end; a tag-like word is not a tag', () => {
    assert.equal(splitParts('Title this: <chat_history>USER: python', PARTS).instruction.trim(), 'Title this:');
    assert.equal(splitParts('see <documentation> here', PARTS).rule, 'whole');
  });
});

const small = (extra = '') =>
  parsePolicyText(
    `version: 1
classifier:
  tie_break: [code, title, summary, fallback]
  default_bucket: fallback
  parts: {instruction_tags: [user_query], quoted_tags: [chat_history], fences: true, quoted_weight: 0.25, quoted_max: 1, forced_tool_input: true}
  similarity: {consult_below: 2, min_similarity: 0.3, weight: 3, max_chars: 500}
${extra}
routes:
  gpu: {url: "http://127.0.0.1:9/v1", model: m, runtime: vllm, context_tokens: 4096, slots: 1, fallback: terminal}
  other: {url: "http://127.0.0.1:8/v1", model: o, runtime: vllm, context_tokens: 4096, slots: 1, fallback: terminal}
buckets:
  code:
    keywords: [python, rust, {term: borrow checker, weight: 2}, {term: traceback, weight: 2}, {term: コード, weight: 2}]
    signals: {tools: 3}
    route: other
  title:
    keywords: [{term: title, weight: 2}]
    signals: {forced_tool: 5}
    examples: ["Give this conversation a short name", "この会話に短い名前を付けて"]
    route: gpu
  summary:
    keywords: [{term: 要約, weight: 3}]
    examples: ["Sum up the key points of this report", "Boil this meeting down to three bullets"]
    route: gpu
  fallback: {route: gpu}
`,
    'job-test-policy',
  );

describe('job scoring on a small policy', () => {
  const p = small();
  const classify = (body: ChatBody | string) => {
    const b: ChatBody = typeof body === 'string' ? { model: 'homelab/auto', messages: [{ role: 'user', content: body }] } : body;
    return p.classifier.classify(requestFacts(b, 'last_user', 2));
  };

  it('quoted words count for a capped fraction: a title job over a long Rust chat stays a title job', () => {
    const history = 'USER: rust borrow checker python traceback\n'.repeat(20);
    const c = classify(`Generate a title for this chat.\n<chat_history>\n${history}</chat_history>`);
    assert.equal(c.bucket, 'title');
    assert.equal(c.scores.code, 1, 'quoted material adds at most quoted_max');
    assert.ok(c.matched.code!.every((t) => t.startsWith('quoted:')));
    assert.equal(c.part, 'quoted:chat_history');
  });

  it('the system prompt is never scored', () => {
    const c = classify({ model: 'homelab/auto', messages: [{ role: 'system', content: 'You write python and rust; always give a title.' }, { role: 'user', content: 'Give this conversation a short name' }] });
    assert.equal(c.matched.code, undefined);
  });

  it('a forced tool_choice makes the user message the input: its words are quoted, the structure decides', () => {
    const tools = [{ type: 'function', function: { name: 'extract' } }];
    const c = classify({ model: 'homelab/auto', tools, tool_choice: { type: 'function', function: { name: 'extract' } }, messages: [{ role: 'user', content: 'my python traceback says rust borrow checker' }] });
    assert.equal(c.bucket, 'title');
    assert.equal(c.part, 'input:forced_tool');
    assert.ok(c.matched.title!.includes('signal:forced_tool'));
    // Without the forced choice the same words and tools are code.
    assert.equal(classify({ model: 'homelab/auto', tools, messages: [{ role: 'user', content: 'my python traceback says rust borrow checker' }] }).bucket, 'code');
  });

  it('terms in spaceless scripts match inside a sentence', () => {
    assert.equal(classify('次の記事を三行で要約してください。').bucket, 'summary');
    assert.equal(classify('このコードを直して').bucket, 'code');
  });

  it('with no keyword, the nearest example decides, and explain names it', () => {
    const c = classify('Could you sum up the key points of this memo?');
    assert.equal(c.bucket, 'summary');
    assert.equal(c.nearest[0]!.example, 'Sum up the key points of this report');
    assert.ok(c.matched.summary!.some((t) => t.startsWith('similar:')));
    const d = route(p, 'Could you sum up the key points of this memo?');
    const view = explainBody(d, { policy: p }) as any;
    assert.equal(view.nearest_examples[0].bucket, 'summary');
    assert.equal(view.classified.part, 'whole');
  });

  it('similarity is not consulted when keywords are decisive, and is deterministic', () => {
    const c = classify('python traceback');
    assert.deepEqual(c.nearest, []);
    const a = classify('この会話に名前を付けてください');
    const b = classify('この会話に名前を付けてください');
    assert.deepEqual(a, b);
    assert.equal(a.bucket, 'title');
  });

  it('the similarity stage can be turned off', () => {
    const off = small().doc.classifier.similarity;
    assert.equal(off.enabled, true);
    const q = parsePolicyText(
      `version: 1
classifier: {tie_break: [a, fallback], default_bucket: fallback, similarity: {enabled: false}}
routes:
  gpu: {url: "http://127.0.0.1:9/v1", model: m, runtime: vllm, context_tokens: 4096, slots: 1, fallback: terminal}
buckets:
  a: {examples: ["sum up the key points"], route: gpu}
  fallback: {route: gpu}
`,
      't',
    );
    assert.equal(q.classifier.classify(requestFacts({ model: 'homelab/auto', messages: [{ role: 'user', content: 'sum up the key points' }] }, 'last_user', 2)).bucket, 'fallback');
  });
});

describe('a job done on the user\'s own code', () => {
  const p = parsePolicyText(
    `version: 1
classifier:
  tie_break: [code, rewrite, fallback]
  default_bucket: fallback
  parts: {instruction_tags: [prompt], quoted_tags: [document], fences: true, quoted_weight: 0.25, quoted_max: 1, code_tags: [rewrite_this]}
routes:
  gpu: {url: "http://127.0.0.1:9/v1", model: m, runtime: vllm, context_tokens: 4096, slots: 1, fallback: terminal}
  other: {url: "http://127.0.0.1:8/v1", model: o, runtime: vllm, context_tokens: 4096, slots: 1, fallback: terminal}
buckets:
  code:
    keywords: [python]
    route: other
  rewrite:
    keywords: [{term: translate, weight: 3}, {term: make it, weight: 1}]
    on_code: code
    route: gpu
  fallback: {route: gpu}
`,
    'on-code-test-policy',
  );
  const classify = (text: string) => p.classifier.classify(requestFacts({ model: 'homelab/auto', messages: [{ role: 'user', content: text }] }, 'last_user', 2));

  it('a rewrite of a ``` block of code scores for the bucket that edits code, and says so', () => {
    const c = classify('translate the comments to English\n```\n# Liest die Datei\ndef load(path): return open(path).read()\n```');
    assert.equal(c.bucket, 'code');
    assert.equal(c.scores.rewrite, 0);
    assert.ok(c.matched.code?.includes('code_edit:rewrite'));
  });

  it('an editor\'s code tag makes the instruction an edit of that code', () => {
    const c = classify('<document>\n<rewrite_this>\nfor i in range(10): total += i\n</rewrite_this>\n</document>\n<prompt>make it faster</prompt>');
    assert.equal(c.bucket, 'code');
  });

  it('prose or a config file in the code tag: only code (YAML included) is a code edit; a tag named in the guidelines is not one', () => {
    const tagged = (body: string, after = '') => `<document>\n<rewrite_this>\n${body}\n</rewrite_this>\n</document>\n<prompt>make it warmer</prompt>${after}`;
    assert.equal(classify(tagged('Most of you know Jonas as the guy who is always late. Raise your glasses.')).bucket, 'rewrite');
    assert.equal(classify(tagged('- platform: state\n  entity_id: binary_sensor.garage_door')).bucket, 'code');
    const guidelines = '\nDo NOT include any <rewrite_this> or <edit_here> tags. Output:\n```\n{{rewritten_code}}\n```';
    assert.equal(classify(tagged('Most of you know Jonas as the guy who is always late.', guidelines)).bucket, 'rewrite');
  });

  it('prose in a fence, or no code at all, leaves the rewrite a rewrite', () => {
    assert.equal(classify('translate this into German: ```the meeting moved to Thursday```').bucket, 'rewrite');
    assert.equal(classify('translate this into German: the meeting moved to Thursday').bucket, 'rewrite');
  });

  it('on_code must name a bucket', () => {
    assert.throws(() => parsePolicyText(`version: 1
classifier: {tie_break: [a], default_bucket: a}
routes:
  gpu: {url: "http://127.0.0.1:9/v1", model: m, runtime: vllm, context_tokens: 4096, slots: 1, fallback: terminal}
buckets:
  a: {route: gpu, on_code: nowhere}
`, 'bad-on-code'), /buckets\.a\.on_code: no bucket named "nowhere"/);
  });
});

describe('ExampleIndex', () => {
  it('an exact example is its own nearest with similarity 1; unrelated text is far', () => {
    const idx = new ExampleIndex(['a', 'b'], [{ bucket: 0, text: 'translate this into French' }, { bucket: 1, text: 'what is the weather like' }], 500);
    const near = idx.nearest('translate this into French', 2);
    assert.equal(near.neighbours[0]!.bucket, 'a');
    assert.equal(near.neighbours[0]!.similarity, 1);
    assert.ok(idx.nearest('zzzz qqqq', 2).best.every((s) => s < 0.1));
  });
});

describe('shipped policy: client shapes named in issue 13', () => {
  it('a short system prompt that states the job counts (n8n Text Classifier); a long one is never read', () => {
    const body = (system: string): ChatBody => ({ model: 'homelab/auto', messages: [{ role: 'system', content: system }, { role: 'user', content: 'Server room alarm: 38°C and rising, the AC failed at 02:10.' }] });
    const short = route(shipped, body('Please classify the text provided by the user into one of: urgent, normal, spam. Only output the json.'));
    assert.equal(short.bucket, 'fast');
    assert.ok(short.matched.fast!.includes('system:classify'));
    const long = route(shipped, body('Please classify the text provided by the user. ' + 'Entity: camera.front_door, alert.freezer. '.repeat(60)));
    assert.notEqual(long.bucket, 'fast');
    assert.equal(long.matched.fast, undefined);
  });

  it('an Open WebUI title task over a Rust conversation is not coding', () => {
    const history = 'USER: how do I share a HashMap between threads in Rust?\nASSISTANT: use Arc<RwLock<HashMap<K, V>>> and tokio::sync::RwLock in async code';
    const d = route(shipped, `### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n### Output:\nJSON format: { "title": "your concise title here" }\n### Chat History:\n<chat_history>\n${history}\n</chat_history>`);
    assert.ok(['ubuntu-4090', 'win-5090'].includes(d.route!), `${d.route} (${d.bucket})`);
  });

  it('a forced tool_choice extraction over text about a JavaScript error is fast, not coding or agentic', () => {
    const d = route(shipped, {
      model: 'homelab/auto',
      tools: [{ type: 'function', function: { name: 'Ticket', parameters: { type: 'object' } } }],
      tool_choice: { type: 'function', function: { name: 'Ticket' } },
      messages: [{ role: 'system', content: 'Extract the ticket fields.' }, { role: 'user', content: 'Our JavaScript checkout throws TypeError: undefined is not a function since the deploy.' }],
    });
    assert.equal(d.bucket, 'fast');
    assert.equal(d.route, 'ubuntu-4090');
  });

  it('an agent loop whose last message is a tool result stays with the agent', () => {
    const d = route(shipped, {
      model: 'homelab/auto',
      tools: [{ type: 'function', function: { name: 'bash' } }],
      messages: [
        { role: 'user', content: 'make it pass' },
        { role: 'assistant', content: null, tool_calls: [{ id: '1', type: 'function', function: { name: 'bash', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: '1', content: 'FAIL 1 test' },
      ],
    });
    assert.equal(d.route, 'ubuntu-6000');
  });

  it('translating UI strings given as JSON is translation, not a fast JSON job', () => {
    const d = route(shipped, { model: 'homelab/auto', response_format: { type: 'json_object' }, messages: [{ role: 'user', content: 'Translate these UI strings to German, same JSON keys: {"save": "Save", "cancel": "Cancel"}' }] });
    assert.equal(d.bucket, 'utility');
  });

  it('Japanese: a translation request and a request to summarise an English article', () => {
    assert.equal(route(shipped, '次の文を自然な英語に翻訳してください：「会議は火曜日に変更になりました。」').route, 'win-5090');
    const article = 'The council reviewed the plan and the risk analysis for the new bridge. '.repeat(20);
    assert.equal(route(shipped, `次の記事を三行で要約してください。\n${article}`).bucket, 'medium_summary');
  });

  it('"summarize briefly" is a fast job in the lab table', () => {
    assert.equal(route(shipped, 'Summarize briefly: the backup finished with two warnings.').bucket, 'fast');
  });

  it('explain --image "is there a person at the door?" lands in the camera bucket', () => {
    const d = route(shipped, { model: 'homelab/auto', messages: [{ role: 'user', content: [{ type: 'text', text: 'is there a person at the door?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] });
    assert.equal(d.bucket, 'camera');
    assert.equal(d.route, 'ubuntu-4090');
  });
});
