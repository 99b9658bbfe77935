// The decision log writes batched lines: nothing is lost on flush(), on its own timer, or when
// the process exits with lines still pending.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LOG_FILES, openLogs } from '../../router/obs/logs.ts';
import { RequestLoggers } from '../../router/obs/request-loggers.ts';
import { pollUntil } from '../helpers/poll.ts';

function decisionLines(dir: string): Array<Record<string, unknown>> {
  let text = '';
  try {
    text = readFileSync(join(dir, LOG_FILES.decisions), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('decision log: every line reaches the file, in order, one JSON object per line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-logs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logs = openLogs(dir, { quiet: true });
  for (let i = 0; i < 500; i++) logs.decision({ request_id: `r${i}`, status: 200, tokens: null });
  // No flush(): the writer's own timer hands them over.
  const lines = await pollUntil('500 decision lines', () => {
    const got = decisionLines(dir);
    return got.length === 500 ? got : undefined;
  });
  assert.deepEqual(
    lines.map((l) => l.request_id),
    Array.from({ length: 500 }, (_, i) => `r${i}`),
  );
  assert.equal(lines[0]!.level, 'info');
  assert.match(String(lines[0]!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(lines[0]!.tokens, null);
});

test('decision log: lines still pending when the process exits are written, even before any await', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-logs-exit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logsModule = pathToFileURL(join(import.meta.dirname, '../../router/obs/logs.ts')).href;
  // Opens the logs, writes three lines and exits in the same turn: no timer, no flush() call,
  // and no file open that has not finished by then (they used to open asynchronously, and
  // pino's exit flush threw, losing the lines).
  const script = `const { openLogs } = await import(${JSON.stringify(logsModule)});
const logs = openLogs(${JSON.stringify(dir)}, { quiet: true });
for (const id of ['a', 'b', 'c']) logs.decision({ request_id: id });
logs.failures.warn({ route: 'spark' }, 'one failure line');
process.exit(0);`;
  const stderr = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30_000 }, (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stderr))),
  );
  assert.equal(stderr, '');
  assert.deepEqual(
    decisionLines(dir).map((l) => l.request_id),
    ['a', 'b', 'c'],
  );
  assert.match(readFileSync(join(dir, 'upstream-failures.jsonl'), 'utf8'), /"msg":"one failure line"/);
});

test('a log dir that cannot be written fails at once, naming the dir and the variable', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-logs-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  assert.throws(() => openLogs(join(file, 'logs')), (err: Error) => err.message.startsWith(`cannot write the logs in ${join(file, 'logs')} (HOMELAB_ROUTER_LOG_DIR): ENOTDIR`));
});

test('request loggers: each line carries the request id; a child is made only when the request logs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-logs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logs = openLogs(dir, { quiet: true });
  let children = 0;
  const counting = {
    failures: new Proxy(logs.failures, { get: (target, key) => (key === 'child' ? (b: object) => (children++, target.child(b)) : Reflect.get(target, key)) }),
    validation: logs.validation,
    service: logs.service,
  };
  const quiet = new RequestLoggers(counting, 'req-quiet');
  assert.equal(children, 0, 'no child for a request that logs nothing');
  void quiet;
  const loud = new RequestLoggers(counting, 'req-loud');
  loud.failures.warn({ route: 'gpu-a', kind: 'timeout' });
  loud.failures.warn({ route: 'gpu-b', kind: 'refused' });
  assert.equal(children, 1, 'one child per request and file, reused');
  loud.validation.warn({ outcome: 'invalid_json' });
  logs.flush();
  const read = (file: string, count: number) =>
    pollUntil(`${count} line(s) in ${file}`, () => {
      const text = readFileSync(join(dir, file), 'utf8');
      const lines = text.split('\n').filter((l) => l !== '');
      return lines.length >= count ? lines.map((l) => JSON.parse(l) as Record<string, unknown>) : undefined;
    });
  const failures = await read(LOG_FILES.failures, 2);
  assert.deepEqual(failures.map((l) => [l.request_id, l.route]), [['req-loud', 'gpu-a'], ['req-loud', 'gpu-b']]);
  assert.equal((await read(LOG_FILES.validation, 1))[0]!.request_id, 'req-loud');
});
