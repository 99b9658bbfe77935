// scripts/recover-cuda.sh with stub systemctl / sudo / modprobe on PATH and a real HTTP
// server as the model server's /v1/models: every exit code path.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/recover-cuda.sh');

describe('scripts/recover-cuda.sh', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let calls: string;
  let upFlag: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hr-recover-cuda-'));
    calls = join(dir, 'calls.log');
    upFlag = join(dir, 'model-server-up');
    // Each stub logs its argv and exits with STUB_FAIL_<WHAT> if set. `systemctl start`
    // "brings the model server up" by creating the flag the HTTP server checks.
    const stub = (name: string, body: string) => {
      writeFileSync(join(dir, name), `#!/usr/bin/env bash\necho "${name} $*" >> "${calls}"\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    };
    stub(
      'systemctl',
      [
        'args=("$@"); verb=${args[0]}; [[ $verb == --user ]] && verb=${args[1]}',
        'if [[ $verb == stop ]]; then exit ${STUB_FAIL_STOP:-0}; fi',
        'if [[ $verb == start ]]; then [[ -n ${STUB_FAIL_START:-} ]] && exit $STUB_FAIL_START; [[ -z ${STUB_NEVER_UP:-} ]] && touch "$STUB_UP_FLAG"; exit 0; fi',
      ].join('\n'),
    );
    stub('sudo', '[[ $1 == -n ]] && shift\nexec "$@"');
    stub('modprobe', '[[ $1 == -r ]] && exit ${STUB_FAIL_UNLOAD:-0}\nexit 0');

    server = createServer((req, res) => {
      req.resume();
      if (existsSync(upFlag)) res.writeHead(200).end('{"data":[]}');
      else res.writeHead(503).end('loading');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/models`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    rmSync(calls, { force: true });
    rmSync(upFlag, { force: true });
  });

  // Async on purpose: the HTTP server above lives in this process and must keep answering.
  function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; calls: string[] }> {
    return new Promise((done) => {
      execFile(
        'bash',
        [SCRIPT, ...args],
        { env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir, XDG_RUNTIME_DIR: dir, STUB_UP_FLAG: upFlag, RECOVER_CUDA_POLL_S: '0.1', ...env } },
        (err, stdout, stderr) => {
          const code = err ? ((err as { code?: number }).code ?? -1) : 0;
          const log = existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [];
          done({ code, stdout, stderr, calls: log });
        },
      );
    });
  }

  test('0: stop, reload nvidia_uvm, start, probe answers 200', async () => {
    const r = await run(['vllm-qwen-vl', url, '5']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls, [
      'systemctl --user stop vllm-qwen-vl',
      'sudo -n modprobe -r nvidia_uvm',
      'modprobe -r nvidia_uvm',
      'sudo -n modprobe nvidia_uvm',
      'modprobe nvidia_uvm',
      'systemctl --user start vllm-qwen-vl',
    ]);
    for (const step of ['1/4 stopping', '2/4 reloading nvidia_uvm', '3/4 starting', '4/4 waiting', 'recovered:']) assert.ok(r.stdout.includes(step), step);
  });

  test('RECOVER_CUDA_SYSTEMCTL and RECOVER_CUDA_MODPROBE override the commands', async () => {
    const r = await run(['vllm-glm', url, '5'], { RECOVER_CUDA_SYSTEMCTL: 'sudo systemctl', RECOVER_CUDA_MODPROBE: `echo "custom reload" >> "${calls}"` });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls, ['sudo systemctl stop vllm-glm', 'systemctl stop vllm-glm', 'custom reload', 'sudo systemctl start vllm-glm', 'systemctl start vllm-glm']);
  });

  test('2: usage errors', async () => {
    for (const args of [[], ['only-unit'], ['u', url, 'soon'], ['u', url, '0'], ['u', url, '5', 'extra']]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /usage: recover-cuda\.sh <unit> <probe-url> \[timeout_s\]/);
      assert.deepEqual(r.calls, [], 'nothing touched');
    }
  });

  test('3: stop failed, nothing else touched', async () => {
    const r = await run(['u', url, '2'], { STUB_FAIL_STOP: '1' });
    assert.equal(r.code, 3);
    assert.deepEqual(r.calls, ['systemctl --user stop u']);
    assert.match(r.stderr, /could not stop u/);
  });

  test('4: module reload failed; the unit is started again anyway', async () => {
    const r = await run(['u', url, '2'], { STUB_FAIL_UNLOAD: '1' });
    assert.equal(r.code, 4);
    assert.deepEqual(r.calls, ['systemctl --user stop u', 'sudo -n modprobe -r nvidia_uvm', 'modprobe -r nvidia_uvm', 'systemctl --user start u']);
    assert.match(r.stderr, /could not reload nvidia_uvm/);
  });

  test('5: start failed', async () => {
    const r = await run(['u', url, '2'], { STUB_FAIL_START: '1' });
    assert.equal(r.code, 5);
    assert.equal(r.calls.at(-1), 'systemctl --user start u');
    assert.match(r.stderr, /could not start u/);
  });

  test('6: the probe never answers 200 within timeout_s', async () => {
    const r = await run(['u', url, '2'], { STUB_NEVER_UP: '1' });
    assert.equal(r.code, 6);
    assert.match(r.stderr, /did not answer 200 within 2s \(last status: 503\)/);
  });

  test('6: nothing listening at all', async () => {
    const r = await run(['u', 'http://127.0.0.1:1/v1/models', '2']);
    assert.equal(r.code, 6);
    assert.match(r.stderr, /last status: no answer/);
  });
});
