// Claude Code and Codex, installed from npm in this folder's own package (.ci/run installs
// it), each complete a tool-using task through the router against a scripted upstream, inside
// a network namespace with only loopback (`unshare -n`), so they cannot reach anything else.
// See agent-lab.ts for the task. Skipped, with the reason, where the CLIs are not installed or
// a network namespace cannot be made; under CI a missing install fails instead (gate.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { agentGate, type AgentGate } from './gate.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

function namespaceProblem(): string | null {
  const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? null : `unshare -n with loopback failed here: ${(r.stderr || r.error?.message || '').trim()}`;
}

function gateFor(cli: string): AgentGate {
  return agentGate(cli, existsSync(`${here}node_modules/.bin/${cli}`), process.env.CI, namespaceProblem);
}

/** The test's options: skipped with the reason, or run (and failed at once when CI lacks the install). */
function options(gate: AgentGate): { skip: string | false; timeout: number } {
  return { skip: 'skip' in gate ? gate.skip : false, timeout: 240_000 };
}

function assertInstalled(gate: AgentGate): void {
  if ('fail' in gate) assert.fail(gate.fail);
}

function runAgent(cli: 'claude' | 'codex'): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" --import tsx agent-lab.ts ${cli}`], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 200_000);
    child.on('close', (rc) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`agent-lab ${cli} exited ${rc} without a result:\n${out.slice(-2000)}\n${err.slice(-2000)}`));
      }
    });
  });
}

function assertToolTask(r: any, endpoint: string): void {
  assert.equal(r.timedOut, false, 'the CLI finished');
  assert.equal(r.rc, 0, `exit code 0; stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.ok(r.stdout.includes(r.secret), `the answer carries the word only the tool could read; stdout: ${r.stdout}`);
  const chats = r.seen.filter((s: any) => s.path === '/v1/chat/completions');
  assert.ok(chats.length >= 2, 'a tool call, then the answer after the tool result');
  assert.ok(chats.some((s: any) => s.roles.includes('tool')), 'the tool result reached the upstream as a tool message');
  for (const s of chats) {
    assert.equal(s.roles[0], 'system', 'one leading system message');
    assert.equal(s.roles.lastIndexOf('system'), 0, 'and no other');
    assert.equal(s.billingHeader, false, 'no billing header upstream');
    assert.equal(s.reasoningEchoed, false, 'reasoning sent back by the client never reaches the upstream as text');
  }
  const lines = r.log.filter((l: any) => l.endpoint === endpoint);
  assert.ok(lines.length >= 2, `the requests are in the decision log as ${endpoint}`);
  for (const l of lines) {
    assert.equal(l.status, 200);
    assert.equal(l.route, 'ubuntu-6000');
    assert.deepEqual(l.tokens, { prompt: 100, completion: 10 });
  }
}

const claude = gateFor('claude');
const codex = gateFor('codex');

test('Claude Code (claude -p) completes a tool-using task through /v1/messages', options(claude), async () => {
  assertInstalled(claude);
  const r = await runAgent('claude');
  assertToolTask(r, 'messages');
  // Claude Code names its session (header and metadata.user_id): every line of the run carries the same one.
  const sessions = new Set(r.log.filter((l: any) => l.endpoint === 'messages').map((l: any) => l.session));
  assert.equal(sessions.size, 1, `one session: ${[...sessions].join(', ')}`);
  assert.match(String([...sessions][0]), /^[0-9a-f-]{36}$/);
});

test('Codex (codex exec, wire_api = "responses") completes a tool-using task through /v1/responses', options(codex), async () => {
  assertInstalled(codex);
  assertToolTask(await runAgent('codex'), 'responses');
});
