// The request-log worker lowers its own thread's priority (router/reqlog/thread-priority.ts):
// on Linux the nice value of that one thread changes, never the router's main thread, and a
// thread already at a lower priority is left as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { Worker } from 'node:worker_threads';
import { currentThreadId, lowerThreadPriority } from '../../router/reqlog/thread-priority.ts';

const linux = process.platform === 'linux';

/** Runs the module's functions inside a new thread; returns what that thread saw. */
function inThread(nice: number): Promise<{ tid: number | null; after: number | null; again: number | null }> {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('../../router/reqlog/thread-priority.ts', import.meta.url).href;
  const source = `
    const { parentPort, workerData } = await import('node:worker_threads');
    const api = await import(${JSON.stringify(tsxApi)}); api.register();
    const m = await import(${JSON.stringify(entry)});
    const after = m.lowerThreadPriority(workerData.nice);
    // Asking for a higher priority afterwards changes nothing.
    const again = m.lowerThreadPriority(0);
    parentPort.postMessage({ tid: m.currentThreadId(), after, again });`;
  const worker = new Worker(source, { eval: true, workerData: { nice }, execArgv: [] });
  return new Promise((resolve, reject) => {
    worker.once('message', (m) => resolve(m as { tid: number | null; after: number | null; again: number | null }));
    worker.once('error', reject);
  });
}

test('a thread lowers its own priority; the main thread keeps its own', { skip: !linux && 'thread nice values are Linux only' }, async () => {
  const mainBefore = getPriority(process.pid);
  const seen = await inThread(Math.min(19, mainBefore + 7));
  assert.ok(seen.tid !== null && seen.tid !== process.pid, 'the thread has its own id');
  assert.equal(seen.after, Math.min(19, mainBefore + 7));
  assert.equal(seen.again, seen.after, 'never raised again');
  assert.equal(getPriority(process.pid), mainBefore, 'the main thread is untouched');
});

test('where a thread has no id of its own, nothing is changed', () => {
  assert.equal(currentThreadId('darwin'), null);
  assert.equal(currentThreadId('win32'), null);
  assert.equal(lowerThreadPriority(10, null), null);
});
