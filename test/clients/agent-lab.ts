// One coding-agent CLI (Claude Code or Codex) run against the router and a scripted chat
// upstream, all on loopback. Meant to run inside `unshare -n` (see agents.test.ts) so the CLI
// can reach nothing else. The task needs a tool: the answer (a random word) is only in a file
// the agent must read with its own tool, and the upstream only says it once the tool result
// came back. Prints one JSON line: the CLI's exit code and output, and what the upstream saw.
//   node --import tsx test/clients/agent-lab.ts claude|codex
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonLines, startLab } from '../helpers/lab.ts';
import { completion, startChatUpstream, type Answer } from '../helpers/chat-upstream.ts';
import { chatSse, chunk, usageChunk } from '../helpers/sse.ts';

const which = process.argv[2];
if (which !== 'claude' && which !== 'codex') throw new Error('usage: agent-lab.ts claude|codex');

const work = mkdtempSync(join(tmpdir(), 'hr-agent-'));
const secret = `word-${randomBytes(4).toString('hex')}`;
writeFileSync(join(work, 'secret.txt'), `${secret}\n`);

function toolNames(body: any): string[] {
  return Array.isArray(body?.tools) ? body.tools.map((t: any) => t.function?.name).filter(Boolean) : [];
}

/** Arguments that read secret.txt with whichever tool the agent offers. */
function readCall(tools: string[]): { name: string; args: unknown } | null {
  if (tools.includes('Read')) return { name: 'Read', args: { file_path: join(work, 'secret.txt') } };
  if (tools.includes('exec_command')) return { name: 'exec_command', args: { cmd: 'cat secret.txt', workdir: work } };
  if (tools.includes('shell_command')) return { name: 'shell_command', args: { command: 'cat secret.txt', workdir: work } };
  if (tools.includes('shell')) return { name: 'shell', args: { command: ['cat', 'secret.txt'], workdir: work } };
  if (tools.includes('Bash')) return { name: 'Bash', args: { command: `cat ${join(work, 'secret.txt')}`, description: 'read the file' } };
  return null;
}

function reply(body: any, answer: { text?: string; call?: { name: string; args: unknown } }): Answer {
  const usage = { prompt_tokens: 100, completion_tokens: 10 };
  if (!body?.stream) {
    const message = answer.call ? { content: null, tool_calls: [{ id: 'call_read_1', type: 'function', function: { name: answer.call.name, arguments: JSON.stringify(answer.call.args) } }] } : { content: answer.text };
    return { kind: 'json', body: completion(message, answer.call ? 'tool_calls' : 'stop', usage) };
  }
  // Each streamed answer opens with reasoning, as vLLM's reasoning parsers send it.
  const chunks = answer.call
    ? [chunk({ role: 'assistant', content: '' }), chunk({ reasoning_content: 'I should read the file.' }), chunk({ tool_calls: [{ index: 0, id: 'call_read_1', type: 'function', function: { name: answer.call.name, arguments: '' } }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify(answer.call.args) } }] }), chunk({}, 'tool_calls')]
    : [chunk({ role: 'assistant', content: '' }), chunk({ reasoning_content: 'The tool answered.' }), chunk({ content: answer.text }), chunk({}, 'stop')];
  return { kind: 'sse', text: chatSse([...chunks, usageChunk(usage.prompt_tokens, usage.completion_tokens)]) };
}

const seen: Array<{ path: string; tools: string[]; roles: string[]; stream: boolean; billingHeader: boolean; reasoningEchoed: boolean }> = [];
const up = await startChatUpstream((body, path) => {
  const tools = toolNames(body);
  const msgs: any[] = Array.isArray(body?.messages) ? body.messages : [];
  seen.push({ path, tools, roles: msgs.map((m) => m.role), stream: body?.stream === true, billingHeader: JSON.stringify(body).includes('x-anthropic-billing-header'), reasoningEchoed: JSON.stringify(msgs).includes('I should read the file.') });
  const toolResult = msgs.filter((m) => m.role === 'tool').map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content))).join('\n');
  if (toolResult.includes(secret)) return reply(body, { text: `The secret word is ${secret}.` });
  const call = readCall(tools);
  if (call && msgs.some((m) => m.role === 'user' && JSON.stringify(m.content).includes('secret.txt'))) return reply(body, { call });
  return reply(body, { text: 'OK.' });
});
const lab = await startLab({ edit: (doc) => { for (const r of Object.values<any>(doc.routes)) r.url = up.url; } });

const bin = new URL(`./node_modules/.bin/${which}`, import.meta.url).pathname;
const prompt = 'Use your tools to read the file secret.txt in the current directory, then tell me the word it contains.';
const home = mkdtempSync(join(tmpdir(), 'hr-agent-home-'));
let args: string[];
const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, NO_COLOR: '1' };
if (which === 'claude') {
  args = ['-p', prompt, '--output-format', 'text', '--allowedTools', 'Read', 'Bash(cat:*)'];
  Object.assign(env, {
    ANTHROPIC_BASE_URL: lab.base,
    ANTHROPIC_AUTH_TOKEN: 'homelab-test',
    ANTHROPIC_MODEL: 'homelab/code',
    ANTHROPIC_DEFAULT_HAIKU_MODEL: 'homelab/code',
    ANTHROPIC_SMALL_FAST_MODEL: 'homelab/code',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
  });
} else {
  const codexHome = join(home, '.codex');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(codexHome, { recursive: true });
  writeFileSync(
    join(codexHome, 'config.toml'),
    ['model = "homelab/code"', 'model_provider = "homelab"', '', '[model_providers.homelab]', 'name = "homelab"', `base_url = "${lab.url}"`, 'wire_api = "responses"', 'env_key = "HOMELAB_ROUTER_KEY"', 'request_max_retries = 0', 'stream_max_retries = 0', ''].join('\n'),
  );
  Object.assign(env, { CODEX_HOME: codexHome, HOMELAB_ROUTER_KEY: 'homelab-test' });
  args = ['exec', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox', '-C', work, prompt];
}

const TIMEOUT_MS = 150_000;
const result = await new Promise<{ rc: number | null; stdout: string; stderr: string; timedOut: boolean }>((resolve) => {
  const child = spawn(bin, args, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, TIMEOUT_MS);
  child.on('close', (rc) => {
    clearTimeout(timer);
    resolve({ rc, stdout, stderr, timedOut });
  });
});

lab.svc.logs.flush();
await new Promise((r) => setTimeout(r, 200));
const log = readJsonLines(join(lab.logDir, 'router-decisions.jsonl')).map((l) => ({ endpoint: l.endpoint, route: l.route, status: l.status, stream: l.stream, tokens: l.tokens, session: l.session }));
await lab.close();
await up.close();
process.stdout.write(JSON.stringify({ which, secret, ...result, stdout: result.stdout.slice(-4000), stderr: result.stderr.slice(-4000), seen, log }) + '\n');
