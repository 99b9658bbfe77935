// `homelab-router init` against simulated servers that answer like vLLM, llama.cpp, LM Studio,
// Ollama and a plain OpenAI-compatible server; and the newcomer's path end to end: two
// servers → init → check → serve → answers routed to both.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { startSimUpstream, type SimOptions, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import { detectUpstream } from '../../router/init/detect.ts';
import { cliEnv, runCli, startServe } from '../helpers/cli.ts';
import { freePort } from '../helpers/net.ts';

async function sim(t: TestContext, opts: SimOptions): Promise<SimUpstream> {
  const s = await startSimUpstream(opts);
  t.after(() => s.close());
  return s;
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-init-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('detectUpstream: what each runtime tells', () => {
  test('vLLM: max_model_len and version; slots and vision guessed', async (t) => {
    const s = await sim(t, { model: 'qwen2.5-coder-32b', runtime: 'vllm', contextTokens: 32768 });
    const f = await detectUpstream('gpu', s.url, 3000);
    assert.equal(f.runtime, 'vllm');
    assert.equal(f.runtimeLabel, 'vLLM 0.11.0');
    assert.equal(f.model, 'qwen2.5-coder-32b');
    assert.deepEqual(f.context, { value: 32768, source: 'vLLM /v1/models max_model_len', guessed: false });
    assert.equal(f.slots?.guessed, true);
    assert.equal(f.vision, undefined);
  });

  test('llama.cpp: per-slot n_ctx, total_slots and modalities from /props; a bare origin gets /v1', async (t) => {
    const s = await sim(t, { model: 'llava-1.6-7b', runtime: 'llamacpp', slots: 3, contextTokens: 4096, vision: true });
    const f = await detectUpstream('cpu', s.origin, 3000);
    assert.equal(f.runtime, 'llamacpp');
    assert.equal(f.url, s.url);
    assert.equal(f.model, 'llava-1.6-7b');
    assert.equal(f.context?.value, 4096);
    assert.equal(f.slots?.value, 3);
    assert.equal(f.slots?.guessed, false);
    assert.deepEqual(f.vision && [f.vision.value, f.vision.guessed], [true, false]);
  });

  test('LM Studio: the loaded chat model (not the embedding one), its loaded context, vlm = vision', async (t) => {
    const s = await sim(t, { model: 'gemma-3-12b', runtime: 'lmstudio', contextTokens: 16384, vision: true });
    const f = await detectUpstream('win', s.url, 3000);
    assert.equal(f.runtime, 'lmstudio');
    assert.equal(f.model, 'gemma-3-12b');
    assert.equal(f.context?.value, 16384);
    assert.equal(f.context?.guessed, false);
    assert.equal(f.vision?.value, true);
    assert.equal(f.slots?.guessed, true);
  });

  test('Ollama: allocated context from /api/ps, capabilities and parameter size from /api/show', async (t) => {
    const s = await sim(t, { model: 'llama3.1:8b', runtime: 'ollama', contextTokens: 32768 });
    const f = await detectUpstream('mini', s.url, 3000);
    assert.equal(f.runtime, 'ollama');
    assert.equal(f.runtimeLabel, 'Ollama 0.12.6');
    assert.equal(f.context?.value, 32768);
    assert.equal(f.context?.guessed, false);
    assert.equal(f.vision?.value, false);
    assert.equal(f.paramsB, 8);
    assert.equal(f.slots?.value, 1);
    assert.equal(f.slots?.guessed, true);

    const idle = await sim(t, { model: 'llama3.1:8b', runtime: 'ollama', loaded: false, vision: true });
    const g = await detectUpstream('idle', idle.url, 3000);
    assert.equal(g.context?.value, 4096);
    assert.equal(g.context?.guessed, true);
    assert.match(g.context!.source, /holds 131072/);
    assert.equal(g.vision?.value, true);
  });

  test('a server that is none of them: openai, model name only', async (t) => {
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/models') res.end(JSON.stringify({ object: 'list', data: [{ id: 'some-model', object: 'model', owned_by: 'someone' }] }));
      else {
        res.statusCode = 404;
        res.end('{"error":"not found"}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const f = await detectUpstream('other', `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/`, 3000);
    assert.equal(f.runtime, 'openai');
    assert.equal(f.model, 'some-model');
    assert.equal(f.context, undefined);
  });
});

describe('homelab-router init', () => {
  test('writes a policy that check accepts; never overwrites without --force', async (t) => {
    const a = await sim(t, { model: 'qwen2.5-coder-32b', runtime: 'vllm', contextTokens: 32768 });
    const b = await sim(t, { model: 'llama-3.1-8b', runtime: 'llamacpp', slots: 4, contextTokens: 8192 });
    const dir = tempDir(t);
    const out = join(dir, 'policy.yaml');
    const r = await runCli(['init', '--upstream', `code=${a.url}`, '--upstream', `chat=${b.url}`, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.match(r.stdout, /code\s+vLLM 0\.11\.0: qwen2\.5-coder-32b, 32768 ctx, 4 slots/);
    assert.match(r.stdout, /npx homelab-router serve --policy /);
    const checked = await runCli(['check', out]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /valid \(2 routes, 10 buckets/);

    const before = readFileSync(out, 'utf8');
    writeFileSync(out, '# mine\n');
    const again = await runCli(['init', '--upstream', `code=${a.url}`, '--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists; nothing was written \(--force overwrites it\)/);
    assert.equal(readFileSync(out, 'utf8'), '# mine\n');
    const forced = await runCli(['init', '--upstream', `code=${a.url}`, '--upstream', `chat=${b.url}`, '--out', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(readFileSync(out, 'utf8'), before);

    // Without --out the policy goes to stdout and the summary to stderr.
    const piped = await runCli(['init', '--upstream', `code=${a.url}`]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /^# homelab-router policy, written by `homelab-router init`/);
    assert.match(piped.stderr, /found\n\s+code/);
  });

  test('an unreachable URL is named on stderr, exit 1, nothing written', async (t) => {
    const a = await sim(t, { model: 'm1', runtime: 'vllm' });
    const port = await freePort();
    const out = join(tempDir(t), 'p.yaml');
    const r = await runCli(['init', '--upstream', `ok=${a.url}`, '--upstream', `gone=http://127.0.0.1:${port}/v1`, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^gone: cannot reach http://127\\.0\\.0\\.1:${port}/v1/models \\(ECONNREFUSED\\)$`, 'm'));
    assert.doesNotMatch(r.stderr, /^ok:/m);
    assert.equal(existsSync(out), false);
  });

  test('a server that wants an API key: a hint without one, the key from --api-key-env with it', async (t) => {
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.headers.authorization !== 'Bearer s3cret') {
        res.statusCode = 401;
        return void res.end('{"error":"Unauthorized"}');
      }
      if (req.url === '/v1/models') return void res.end(JSON.stringify({ object: 'list', data: [{ id: 'locked-14b', object: 'model', owned_by: 'vllm', max_model_len: 16384 }] }));
      if (req.url === '/version') return void res.end('{"version":"0.11.0"}');
      res.statusCode = 404;
      res.end('{"detail":"Not Found"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
    const out = join(tempDir(t), 'p.yaml');

    const refused = await runCli(['init', '--upstream', `locked=${url}`, '--out', out]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /answered 401: the server wants an API key: put it in an environment variable and add --api-key-env locked=THAT_VARIABLE/);
    const unset = await runCli(['init', '--upstream', `locked=${url}`, '--api-key-env', 'locked=LOCKED_KEY', '--out', out]);
    assert.equal(unset.code, 2);
    assert.match(unset.stderr, /\$LOCKED_KEY is not set/);

    const r = await runCli(['init', '--upstream', `locked=${url}`, '--api-key-env', 'locked=LOCKED_KEY', '--out', out], { env: cliEnv({ LOCKED_KEY: 's3cret' }) });
    assert.equal(r.code, 0, r.stderr);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /^ {4}api_key_env: "LOCKED_KEY"/m);
    assert.match(text, /^ {4}context_tokens: 16384$/m);
    assert.doesNotMatch(text, /s3cret/, 'the key itself is never written');
    assert.equal((await runCli(['check', out])).code, 0);
  });

  test('bad flags and arguments exit 2 with the usage line; --help answers', async () => {
    for (const args of [['init'], ['init', '--upstream', 'nourl'], ['init', '--upstream', 'a=ftp://x'], ['init', '--upstream', 'a=http://x/v1', '--upstream', 'a=http://y/v1'], ['init', '--bogus']]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: homelab-router init --upstream NAME=URL|usage: homelab-router <command>/, args.join(' '));
    }
    const help = await runCli(['init', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /init --upstream NAME=URL \[\.\.\.\] \[--api-key-env NAME=VARIABLE\] \[--out FILE\] \[--force\]/);
  });
});

test('a newcomer with two OpenAI-compatible servers: init, check, serve, and answers come from both', async (t) => {
  const code = await sim(t, { model: 'qwen2.5-coder-32b-instruct', runtime: 'vllm', contextTokens: 32768 });
  const chat = await sim(t, { model: 'llama-3.1-8b-instruct', runtime: 'ollama', contextTokens: 8192 });
  const dir = tempDir(t);
  const policy = join(dir, 'my-lab.yaml');
  const init = await runCli(['init', '--upstream', `big=${code.url}`, '--upstream', `small=${chat.url}`, '--out', policy]);
  assert.equal(init.code, 0, init.stderr);
  assert.equal((await runCli(['check', policy])).code, 0);

  const router = await startServe(['--policy', policy, '--listen', '127.0.0.1:0'], cliEnv({ HOMELAB_ROUTER_LOG_DIR: join(dir, 'logs') }));
  t.after(() => router.stop());
  const ask = async (content: string) => {
    const res = await fetch(`${router.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content }] }),
    });
    const body = (await res.json()) as any;
    return { status: res.status, route: res.headers.get('x-homelab-route'), bucket: res.headers.get('x-homelab-bucket'), model: body.model, content: body.choices?.[0]?.message?.content };
  };
  const coding = await ask('Refactor this python function and add pytest tests');
  assert.deepEqual([coding.status, coding.route, coding.bucket, coding.model], [200, 'big', 'coding', 'qwen2.5-coder-32b-instruct']);
  const joke = await ask('tell me a joke about cats');
  assert.deepEqual([joke.status, joke.route, joke.bucket, joke.model], [200, 'small', 'general_chat', 'llama-3.1-8b-instruct']);
  assert.equal(code.received.length, 1);
  assert.equal(chat.received.length, 1);
  assert.equal(chat.received[0]!.body.model, 'llama-3.1-8b-instruct');

  // The chat server goes down: its requests fail over to the most capable one.
  await chat.stop();
  const failover = await ask('tell me a joke about dogs');
  assert.equal(failover.status, 200);
  assert.equal(failover.route, 'big');
});
