// The keyword classifier and its matcher, on small inline policies: what counts as a match,
// how scores combine, and what happens when nothing matches.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestFacts, type ChatBody, type ChatMessage } from '../../router/classify/request-facts.ts';
import { continuesListing, instructionLines, type Classification } from '../../router/classify/classifier.ts';
import { parsePolicyText } from '../../router/policy/load.ts';
import type { CompiledPolicy } from '../../router/policy/compile.ts';

/** A one-route policy whose buckets are `buckets` (YAML lines under `buckets:`) plus `fallback`. */
function policyWith(buckets: string, opts: { tieBreak?: string[]; lookback?: number; lookbackBelow?: number; scanChars?: number; newTopic?: string[]; deviceTools?: string[]; chatTools?: string[] } = {}): CompiledPolicy {
  const names = [...buckets.matchAll(/^ {2}([a-z0-9_-]+):/gm)].map((m) => m[1]!);
  const tieBreak = opts.tieBreak ?? [...names, 'fallback'];
  return parsePolicyText(
    `version: 1
classifier:
  tie_break: [${tieBreak.join(', ')}]
  default_bucket: fallback
  lookback_turns: ${opts.lookback ?? 2}
  lookback_below: ${opts.lookbackBelow ?? 0}
${opts.scanChars === undefined ? '' : `  scan_chars: ${opts.scanChars}\n`}${opts.newTopic === undefined ? '' : `  new_topic: [${opts.newTopic.join(', ')}]\n`}${opts.deviceTools === undefined ? '' : `  device_tools: [${opts.deviceTools.map((t) => JSON.stringify(t)).join(', ')}]\n`}${opts.chatTools === undefined ? '' : `  chat_tools: [${opts.chatTools.map((t) => JSON.stringify(t)).join(', ')}]\n`}  image_bucket: fallback
routes:
  gpu: {url: "http://127.0.0.1:9/v1", model: m, runtime: vllm, vision: true, context_tokens: 4096, slots: 1, fallback: terminal}
buckets:
${buckets}
  fallback: {route: gpu}
`,
    'inline-test-policy',
  );
}

function classify(policy: CompiledPolicy, body: ChatBody | string): Classification {
  const request: ChatBody = typeof body === 'string' ? { model: 'homelab/auto', messages: [{ role: 'user', content: body }] } : body;
  const { scope, lookback_turns } = policy.doc.classifier;
  return policy.classifier.classify(requestFacts(request, scope, lookback_turns));
}

/** The terms of `bucket` that matched `text` (empty when none). */
function matches(policy: CompiledPolicy, text: string, bucket = 'words'): string[] {
  return classify(policy, text).matched[bucket] ?? [];
}

describe('term matching', () => {
  const words = policyWith(`  words:
    keywords: [code, "c++", "c#", refactor*, función, übersetze, किताब, कोड, फ़िल्म, "tl;dr", async/await, vor- und nachteile, in c]
    route: gpu`);

  it('matches whole words only', () => {
    assert.deepEqual(matches(words, 'which codec does this file use'), []);
    assert.deepEqual(matches(words, 'encode the barcode'), []);
    assert.deepEqual(matches(words, 'Show me the code.'), ['code']);
    assert.deepEqual(matches(words, '(code)'), ['code']);
  });

  it('keeps + and # as part of c++ and c#, and tells them from plain c', () => {
    assert.deepEqual(matches(words, 'port this from C++ to C#'), ['c++', 'c#']);
    assert.deepEqual(matches(words, 'written in C++'), ['c++']);
    assert.deepEqual(matches(words, 'reverse a string in C'), ['in c']);
    assert.deepEqual(matches(words, 'a cc compiler'), []);
  });

  it('treats a trailing * as any word ending', () => {
    assert.deepEqual(matches(words, 'we are refactoring the parser'), ['refactor*']);
    assert.deepEqual(matches(words, 'Refactor it'), ['refactor*']);
    assert.deepEqual(matches(words, 'a prerefactor step'), []);
  });

  it('ignores case, including accented capitals', () => {
    assert.deepEqual(matches(words, 'UNA FUNCIÓN RECURSIVA'), ['función']);
    assert.deepEqual(matches(words, 'ÜBERSETZE bitte'), ['übersetze']);
  });

  it('ignores accents, precomposed or combining, so unaccented typing still matches', () => {
    assert.deepEqual(matches(words, 'una funcion recursiva'), ['función']);
    assert.deepEqual(matches(words, 'una funcio\u0301n recursiva'), ['función']);
    assert.deepEqual(matches(words, 'Ubersetze bitte'), ['übersetze']);
  });

  it('keeps Devanagari vowel signs inside the word', () => {
    assert.deepEqual(matches(words, 'मुझे एक किताब चाहिए।'), ['किताब']);
    assert.deepEqual(matches(words, 'किताब।'), ['किताब']);
    // किताबें (books) and कोडिंग (coding) are longer words, not the terms किताब and कोड.
    assert.deepEqual(matches(words, 'मुझे किताबें पसंद हैं'), []);
    assert.deepEqual(matches(words, 'कोडिंग सीखनी है'), []);
    assert.deepEqual(matches(words, 'मेरा कोड देखो'), ['कोड']);
  });

  it('matches Hindi with or without the nukta, combining or precomposed', () => {
    assert.deepEqual(matches(words, 'कोई फिल्म बताओ'), ['फ़िल्म']);
    assert.deepEqual(matches(words, 'कोई फ\u093Cिल्म बताओ'), ['फ़िल्म']);
    assert.deepEqual(matches(words, 'कोई \u095Eिल्म बताओ'), ['फ़िल्म']);
  });

  it('matches phrases across any run of spaces and punctuation', () => {
    assert.deepEqual(matches(words, 'TL;DR please'), ['tl;dr']);
    assert.deepEqual(matches(words, 'tl dr please'), ['tl;dr']);
    assert.deepEqual(matches(words, 'explain async / await'), ['async/await']);
    assert.deepEqual(matches(words, 'explain async-await'), ['async/await']);
    assert.deepEqual(matches(words, 'Welche Vor- und Nachteile hat das?'), ['vor- und nachteile']);
    assert.deepEqual(matches(words, 'vor und\nnachteile'), ['vor- und nachteile']);
    assert.deepEqual(matches(words, 'asynchronous await'), []);
  });

  it('ends a word where kana, Han or Hangul begin (no space between the scripts)', () => {
    const mixed = policyWith(`  words:
    keywords: [github, frigate, python, コード, 通知]
    route: gpu`);
    assert.deepEqual(matches(mixed, 'GitHubにissueを立てておいて'), ['github']);
    assert.deepEqual(matches(mixed, 'Frigateの通知です'), ['frigate', '通知']);
    assert.deepEqual(matches(mixed, 'このPythonコードを直して'), ['python', 'コード']);
    assert.deepEqual(matches(mixed, '把这个python脚本改一下'), ['python']);
    assert.deepEqual(matches(mixed, 'GitHub에 이슈를 올려 줘'), ['github']);
    // Still whole words: a longer Latin word before the kana is not the term.
    assert.deepEqual(matches(mixed, 'GitHubActionsのログ'), []);
  });

  it('matches a term that mixes Latin letters into a spaceless script whatever their case', () => {
    const mixed = policyWith(`  words:
    keywords: [pr 올려, PRを作, 提个pr]
    route: gpu`);
    assert.deepEqual(matches(mixed, '테스트 고치고 PR 올려 줘'), ['pr 올려']);
    assert.deepEqual(matches(mixed, '直したらprを作ってください'), ['PRを作']);
    assert.deepEqual(matches(mixed, '改完以后提个PR'), ['提个pr']);
  });
});

describe('scoring', () => {
  const policy = policyWith(`  alpha:
    keywords: [apple, {term: banana, weight: 2}]
    route: gpu
  beta:
    keywords: [cherry, {term: date, weight: 3}, {term: apple pie, weight: -3}]
    route: gpu`);

  it('counts each distinct term once, with its weight', () => {
    const c = classify(policy, 'apple apple apple banana');
    assert.equal(c.bucket, 'alpha');
    assert.equal(c.scores.alpha, 3);
    assert.deepEqual(c.matched.alpha, ['apple', 'banana']);
  });

  it('lets the highest score win', () => {
    const c = classify(policy, 'banana or date');
    assert.deepEqual([c.scores.alpha, c.scores.beta, c.bucket], [2, 3, 'beta']);
  });

  it('subtracts negative weights, and a bucket at or below zero never wins', () => {
    const c = classify(policy, 'cherry and apple pie');
    assert.equal(c.scores.beta, -2);
    assert.equal(c.bucket, 'alpha'); // "apple" inside "apple pie" still counts for alpha
    const zero = policyWith(`  only:
    keywords: [code, {term: zip code, weight: -1}]
    route: gpu`);
    const z = classify(zero, 'what is the zip code of Oslo');
    assert.equal(z.bucket, 'fallback');
    assert.equal(z.reason, 'default_bucket');
  });

  it('breaks ties by classifier.tie_break order', () => {
    const text = 'apple and cherry';
    assert.equal(classify(policy, text).bucket, 'alpha');
    const reversed = policyWith(
      `  alpha:
    keywords: [apple]
    route: gpu
  beta:
    keywords: [cherry]
    route: gpu`,
      { tieBreak: ['beta', 'alpha', 'fallback'] },
    );
    assert.equal(classify(reversed, text).bucket, 'beta');
  });

  it('falls back to default_bucket when nothing matches', () => {
    const c = classify(policy, 'qwpoeiru');
    assert.equal(c.bucket, 'fallback');
    assert.equal(c.reason, 'default_bucket');
    assert.deepEqual(c.matched, {});
    assert.equal(classify(policy, '').bucket, 'fallback');
  });

  it('is deterministic: the same request gives a deep-equal result, also from a recompiled policy', () => {
    const text = 'banana, date and cherry, then apple';
    const first = classify(policy, text);
    assert.deepEqual(classify(policy, text), first);
    const again = policyWith(`  alpha:
    keywords: [apple, {term: banana, weight: 2}]
    route: gpu
  beta:
    keywords: [cherry, {term: date, weight: 3}, {term: apple pie, weight: -3}]
    route: gpu`);
    assert.deepEqual(classify(again, text), first);
  });
});

describe('signals', () => {
  const policy = policyWith(`  agent:
    signals: {tools: 3}
    route: gpu
  code:
    signals: {code_block: 2, inline_code: 1.5}
    route: gpu
  structured:
    signals: {json_schema: 2.5}
    route: gpu
  chat:
    signals: {question: 0.5}
    route: gpu`);
  const user = (content: string): ChatMessage[] => [{ role: 'user', content }];
  /** An OpenAI function tool named `name`. */
  const fn = (name: string) => ({ type: 'function', function: { name, parameters: {} } });

  it('tools: a non-empty tools array', () => {
    const tools = [{ type: 'function', function: { name: 'run', parameters: {} } }];
    const c = classify(policy, { model: 'homelab/auto', messages: user('check the disk'), tools });
    assert.equal(c.bucket, 'agent');
    assert.deepEqual(c.matched.agent, ['signal:tools']);
    assert.equal(classify(policy, { model: 'homelab/auto', messages: user('check the disk'), tools: [] }).bucket, 'fallback');
  });

  it('code_block: a fenced or indented block', () => {
    assert.equal(classify(policy, 'look:\n```\nx = 1\n```').bucket, 'code');
    assert.equal(classify(policy, 'look:\n\n    x = 1\n').bucket, 'code');
    assert.equal(classify(policy, 'plain words only').bucket, 'fallback');
  });

  it('inline_code: code in a sentence, not prose punctuation', () => {
    for (const text of ['why does range(len(xs)) fail', 'run `npm ci` first', 'total += xs[i]', 'if a == b then', 'what is my_var for',
      'a macro in printer.cfg', 'why does ^[a-z0-9.]+@ fail', 'match [\\d]{3}']) {
      assert.equal(classify(policy, text).bucket, 'code', text);
    }
    for (const text of ['the immune system[3] works', 'see the file(s) attached', 'Oslo -> Rome', 'John 3:16', '_really_ good',
      'the moon[1]* is bright', 'Mr. Smith went to Washington.', 'my notes.txt and www.example.com']) {
      assert.equal(classify(policy, text).bucket, 'fallback', text);
    }
  });

  it('a negative signal weight counts against its bucket', () => {
    const withTools = policyWith(`  camera:
    keywords: [{term: frigate, weight: 3}]
    signals: {tools: -3}
    route: gpu
  ops:
    keywords: [restart]
    signals: {tools: 1}
    route: gpu`);
    const tools = [{ type: 'function', function: { name: 'terminal', parameters: {} } }];
    const text = 'frigate keeps restarting, restart it';
    assert.equal(classify(withTools, text).bucket, 'camera');
    const agent = classify(withTools, { model: 'homelab/auto', messages: user(text), tools });
    assert.equal(agent.bucket, 'ops');
    assert.equal(agent.scores.camera, 0);
  });

  it('device_tools: a tool named in classifier.device_tools is a home\'s voice assistant, not an agent', () => {
    const buckets = `  agent:
    signals: {tools: 3, device_tools: -3}
    route: gpu
  chat:
    signals: {device_tools: 1}
    route: gpu`;
    const home = policyWith(buckets, { deviceTools: ['Hass*', 'GetLiveContext'] });
    const ask = (tools: unknown[]): ChatBody => ({ model: 'homelab/auto', messages: user('turn off the kitchen lights'), tools });
    const c = classify(home, ask([fn('HassTurnOn'), fn('HassTurnOff')]));
    assert.equal(c.bucket, 'chat');
    assert.deepEqual(c.matched.chat, ['signal:device_tools']);
    assert.equal(c.scores.agent, 0);
    // Names ignore case; a bare {name} (as Anthropic tools are) counts; one such tool among others is enough.
    assert.equal(classify(home, ask([fn('getlivecontext')])).bucket, 'chat');
    assert.equal(classify(home, ask([{ name: 'HassLightSet' }])).bucket, 'chat');
    assert.equal(classify(home, ask([fn('script_good_night'), fn('HassTurnOn')])).bucket, 'chat');
    // Other tools, a prefix that is only part of a name, or no device_tools in the policy: an agent.
    assert.equal(classify(home, ask([fn('run_terminal_cmd')])).bucket, 'agent');
    assert.equal(classify(home, ask([fn('MyHassTool')])).bucket, 'agent');
    assert.equal(classify(policyWith(buckets), ask([fn('HassTurnOn')])).bucket, 'agent');
    // No tools at all: the signal is off, whatever the text says.
    assert.equal(classify(home, 'HassTurnOn the lights').bucket, 'fallback');
  });

  it('chat_tools: a request offering only a chat app\'s helpers is scored on its words', () => {
    const buckets = `  agent:
    signals: {tools: 3, tool_result: 1, chat_tools: -4}
    route: gpu
  chat:
    keywords: [poem]
    route: gpu`;
    const app = policyWith(buckets, { chatTools: ['web_search*', 'calculator'] });
    const ask = (tools: unknown[]): ChatBody => ({ model: 'homelab/auto', messages: user('a short poem for Greta'), tools });
    const c = classify(app, ask([fn('web_search_preview'), fn('Calculator')]));
    assert.equal(c.bucket, 'chat');
    assert.deepEqual(c.matched.agent, ['signal:tools', 'signal:chat_tools']);
    // One tool that is not a chat helper makes it an agent's request; so does a policy without the list.
    assert.equal(classify(app, ask([fn('web_search'), fn('bash')])).bucket, 'agent');
    assert.equal(classify(policyWith(buckets), ask([fn('web_search')])).bucket, 'agent');
  });

  it('json_schema: response_format json_schema or json_object', () => {
    for (const type of ['json_schema', 'json_object']) {
      const c = classify(policy, { model: 'homelab/auto', messages: user('the event'), response_format: { type } });
      assert.equal(c.bucket, 'structured', type);
    }
    assert.equal(classify(policy, { model: 'homelab/auto', messages: user('the event'), response_format: { type: 'text' } }).bucket, 'fallback');
  });

  it('question: a short text ending in ? (or opening with ¿)', () => {
    assert.equal(classify(policy, 'How far is the moon?').bucket, 'chat');
    assert.equal(classify(policy, '¿Qué hora es').bucket, 'chat');
    assert.equal(classify(policy, 'Pourquoi ma requête échoue ?').bucket, 'chat');
    assert.equal(classify(policy, 'The moon is far.').bucket, 'fallback');
    assert.equal(classify(policy, 'word '.repeat(200) + '?').bucket, 'fallback');
  });
});

describe('lookback', () => {
  const buckets = `  coding:
    keywords: [python, function]
    route: gpu
  chat:
    keywords: [dinner, {term: can you, weight: 0.3}, {term: explain, weight: 0.5}]
    route: gpu`;
  const conversation: ChatMessage[] = [
    { role: 'user', content: 'Write a Python function that parses dates' },
    { role: 'assistant', content: 'Here it is. Should I add dinner-time examples too?' },
    { role: 'user', content: 'yes, do that' },
  ];
  const body: ChatBody = { model: 'homelab/auto', messages: conversation };

  it('scores an earlier user turn when the last one matches nothing', () => {
    const c = classify(policyWith(buckets), body);
    assert.equal(c.bucket, 'coding');
    assert.equal(c.turn, 1);
    assert.deepEqual(c.matched.coding, ['python', 'function']);
  });

  it('never scores assistant turns, and stops at lookback_turns', () => {
    const c = classify(policyWith(buckets, { lookback: 0 }), body);
    assert.equal(c.bucket, 'fallback');
    assert.equal(c.turn, 0);
  });

  it('with lookback_below, also borrows when the last turn only holds lighter terms', () => {
    const followUp: ChatBody = { model: 'homelab/auto', messages: [...conversation.slice(0, 2), { role: 'user', content: 'can you explain that?' }] };
    assert.equal(classify(policyWith(buckets), followUp).bucket, 'chat');
    const c = classify(policyWith(buckets, { lookbackBelow: 1 }), followUp);
    assert.equal(c.bucket, 'coding');
    assert.equal(c.turn, 1);
    // A last turn that reaches the threshold keeps its own topic.
    const strong: ChatBody = { model: 'homelab/auto', messages: [...conversation.slice(0, 2), { role: 'user', content: 'forget it, dinner ideas?' }] };
    assert.equal(classify(policyWith(buckets, { lookbackBelow: 1 }), strong).bucket, 'chat');
    // No earlier turn has a heavy term either: the last turn stands.
    const weakOnly: ChatBody = { model: 'homelab/auto', messages: [{ role: 'user', content: 'hello there' }, { role: 'user', content: 'can you explain?' }] };
    const w = classify(policyWith(buckets, { lookbackBelow: 1 }), weakOnly);
    assert.deepEqual([w.bucket, w.turn], ['chat', 0]);
  });

  it('a new-topic phrase keeps a weak last turn on its own words (new_topic)', () => {
    const opts = { lookbackBelow: 1, newTopic: ['btw', 'ついでに'] };
    for (const content of ['thanks! btw, can you explain how long an egg takes?', 'ありがとう！ついでに、can you explain 京都?']) {
      const followUp: ChatBody = { model: 'homelab/auto', messages: [...conversation.slice(0, 2), { role: 'user', content }] };
      assert.equal(classify(policyWith(buckets, { lookbackBelow: 1 }), followUp).bucket, 'coding', content);
      const c = classify(policyWith(buckets, opts), followUp);
      assert.deepEqual([c.bucket, c.turn], ['chat', 0], content);
    }
    // Only near the start: a phrase deep in a long message opens nothing.
    const late: ChatBody = { model: 'homelab/auto', messages: [...conversation.slice(0, 2), { role: 'user', content: 'can you explain ' + 'that part '.repeat(30) + 'btw' }] };
    assert.equal(classify(policyWith(buckets, opts), late).bucket, 'coding');
  });

  it('keeps the last turn when it matches anything', () => {
    const c = classify(policyWith(buckets), { model: 'homelab/auto', messages: [...conversation.slice(0, 2), { role: 'user', content: 'actually, dinner ideas instead' }] });
    assert.equal(c.bucket, 'chat');
    assert.equal(c.turn, 0);
  });
});

describe('instruction line of a long message', () => {
  const policy = policyWith(`  summary:
    keywords: [summarize]
    route: gpu
  reasoning:
    keywords: [architecture, risk, trade-off, plan]
    route: gpu`);
  const pasted = 'The architecture review found one risk, one trade-off and no plan. '.repeat(12);

  it('a decisive first line decides over the pasted text below it', () => {
    const c = classify(policy, `Summarize this article:\n\n${pasted}`);
    assert.equal(c.bucket, 'summary');
    assert.deepEqual(c.matched.summary, ['instruction:summarize']);
    assert.equal(c.matched.reasoning, undefined);
  });

  it('a decisive last line decides too', () => {
    assert.equal(classify(policy, `${pasted}\n\nPlease summarize the above`).bucket, 'summary');
  });

  it('an instruction line with no keyword leaves the whole text to decide', () => {
    assert.equal(classify(policy, `Here is what I got:\n\n${pasted}`).bucket, 'reasoning');
  });

  it('a short message is scored whole, first line or not', () => {
    const c = classify(policy, 'Summarize:\nthe architecture risk and trade-off plan');
    assert.equal(c.bucket, 'reasoning');
    assert.ok(!(c.matched.summary ?? []).some((t) => t.startsWith('instruction:')));
  });
});

describe('instruction lines: a listing\'s last item, and the material below a deciding line', () => {
  const policy = policyWith(`  summary:
    keywords: [summarize, bullet points]
    route: gpu
  ops:
    keywords: [cron]
    route: gpu
  coding:
    keywords: [python]
    signals: {inline_code: 3}
    route: gpu`);
  const log = Array.from({ length: 30 }, (_, i) => `${i + 1}: Nov 20 05:${String(i).padStart(2, '0')}:11 nas-01 smartd[771]: temperature changed`).join('\n');
  const csv = Array.from({ length: 40 }, (_, i) => `sensor.house_power_w,${String(i % 24).padStart(2, '0')}:00,${300 + i}`).join('\n');

  it('the last line of a numbered log is an item of it, not an instruction', () => {
    const c = classify(policy, `Sort these lines by host.\n\n${log}\n31: Nov 20 06:06:26 nas-01 CRON[28253]: (root) CMD (backup.sh)`);
    assert.deepEqual(c.matched.ops, ['cron']);
  });

  it('a plain-worded last line below the same log is still the instruction', () => {
    const c = classify(policy, `${log}\nSummarize these lines for the cron owner.`);
    assert.equal(c.bucket, 'summary');
    assert.deepEqual(c.matched.summary, ['instruction:summarize']);
  });

  it('when an instruction line decides, snake_case names in the data below are not inline code', () => {
    const c = classify(policy, `Write 4 bullet points about yesterday's power use.\n\nHistory:\n${csv}`);
    assert.equal(c.bucket, 'summary');
    assert.equal(c.matched.coding, undefined);
  });

  it('inline code on the deciding line itself still counts', () => {
    const c = classify(policy, `Summarize why load_config() returns None for this file:\n\n${csv}`);
    assert.equal(c.bucket, 'coding');
    assert.deepEqual(c.matched.coding, ['signal:inline_code']);
  });

  it('continuesListing: by the shape of the line starts above it; a plain word never continues one', () => {
    const lastOf = (text: string) => continuesListing(text, text.lastIndexOf('\n'));
    assert.equal(lastOf(log), true);
    assert.equal(lastOf(csv), true);
    assert.equal(lastOf('- milk\n- bread\n- eggs\n- rice'), true);
    assert.equal(lastOf('2026-11-20 a\n2026-11-21 b\n2026-11-22 c\n2026-11-23 d'), true);
    assert.equal(lastOf(`${log}\nSummarize the above.`), false);
    assert.equal(lastOf('The first line.\nThe second line.\nThe third line.\nThe fourth line.'), false);
    assert.equal(lastOf('1: only\n2: two\n3: lines'), false, 'two lines above are not three alike');
    assert.equal(lastOf('1: a\nx\n2: b\ny\n3: c\nz\n4: d'), false, 'three of the five lines above start otherwise');
    assert.equal(lastOf(`1: a\n2: b\n3: c${'\n'.repeat(30)}4: d`), false, 'at most 20 lines are read upwards, blank ones included');
  });

  it('instructionLines: first and last line of a long text, each at most 300 characters', () => {
    const body = 'word '.repeat(200);
    assert.deepEqual(instructionLines(`Summarize:\n${body}\nThanks!`), ['Summarize:', 'Thanks!']);
    assert.deepEqual(instructionLines(`${'x'.repeat(301)}\n${body}`), []);
    assert.deepEqual(instructionLines('Summarize:\nshort'), [], 'a short text has none');
  });
});

describe('classifier.scan_chars: a long text is read at its start and its end', () => {
  const policy = policyWith('  words: {route: gpu, keywords: [kubernetes, translate, refactor*]}', { scanChars: 2048 });
  const filler = (chars: number): string => 'lorem ipsum dolor sit amet '.repeat(Math.ceil(chars / 27)).slice(0, chars);

  it('finds a term in the first or the last half of scan_chars', () => {
    assert.deepEqual(matches(policy, 'translate ' + filler(10_000)), ['translate']);
    assert.deepEqual(matches(policy, filler(10_000) + ' kubernetes'), ['kubernetes']);
  });

  it('does not read the middle of a text longer than scan_chars', () => {
    assert.deepEqual(matches(policy, filler(5_000) + ' kubernetes ' + filler(5_000)), []);
  });

  it('reads all of a text up to scan_chars', () => {
    assert.deepEqual(matches(policy, filler(900) + ' kubernetes ' + filler(900)), ['kubernetes']);
  });

  it('cuts at whitespace: a word across the cut is not read as a shorter one', () => {
    // "kubernetesxyz" starts at 1014: a cut at exactly 1024 (scan_chars / 2) would leave
    // "kubernetes" at the head's end and match it.
    const text = filler(1013) + ' kubernetesxyz ' + filler(10_000);
    assert.equal(text.indexOf('kubernetesxyz'), 1014);
    assert.deepEqual(matches(policy, text), []);
  });
});
