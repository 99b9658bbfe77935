// watchPolicyFile: a change reported by both the folder watch and the stat poll reloads once,
// and each distinct change (rename over, in-place write) reloads exactly once more.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, unwatchFile, watchFile, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { watchPolicyFile } from '../../router/policy/watch.ts';
import { pollUntil } from '../helpers/poll.ts';

const DEBOUNCE_MS = 20;
const POLL_MS = 300;

// Resolves once the stat poll has reported a change and the watcher's debounce for it has run.
// fs.watchFile shares one poller per path and calls listeners in order, so this listener runs
// right after the watcher's; a timer of the same length set afterwards fires after the
// watcher's debounce timer.
// Bounded: on a loaded machine the poll may fold both writes into one report; the test then
// still checks the count instead of hanging.
function afterNextPoll(file: string): Promise<void> {
  return new Promise((resolve) => {
    const giveUp = setTimeout(() => {
      unwatchFile(file, listener);
      resolve();
    }, POLL_MS * 20);
    const listener = (cur: Stats, prev: Stats) => {
      if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino && cur.size === prev.size) return;
      clearTimeout(giveUp);
      unwatchFile(file, listener);
      setTimeout(resolve, DEBOUNCE_MS);
    };
    watchFile(file, { interval: POLL_MS, persistent: false }, listener);
  });
}

test('each change to the policy file triggers one reload, whichever source sees it first', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-watch-unit-'));
  const file = join(dir, 'routing_policy.yaml');
  writeFileSync(file, 'version: 1\n');
  let calls = 0;
  const watcher = watchPolicyFile(file, () => calls++, { debounceMs: DEBOUNCE_MS, pollMs: POLL_MS });
  t.after(() => watcher.close());

  // An editor's save: temp file renamed over the policy.
  let polled = afterNextPoll(file);
  writeFileSync(join(dir, 'tmp'), 'version: 1\n# two\n');
  renameSync(join(dir, 'tmp'), file);
  await pollUntil('the first reload', () => (calls >= 1 ? true : undefined));
  await polled;
  assert.equal(calls, 1, 'the folder event and the stat poll made one reload');

  // A write in place (what a single-file bind mount shows).
  polled = afterNextPoll(file);
  writeFileSync(file, 'version: 1\n# three, longer\n');
  await pollUntil('the second reload', () => (calls >= 2 ? true : undefined));
  await polled;
  assert.equal(calls, 2);
});

test('a change made before the watch is armed still reloads, once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-watch-early-'));
  const file = join(dir, 'routing_policy.yaml');
  writeFileSync(file, 'version: 1\n');
  let calls = 0;
  // A stat poll too slow to help: only the folder watch (armed asynchronously) can see changes.
  const watcher = watchPolicyFile(file, () => calls++, { debounceMs: DEBOUNCE_MS, pollMs: 600_000 });
  t.after(() => watcher.close());
  // Same tick as the call: the folder watch is not armed yet.
  writeFileSync(join(dir, 'tmp'), 'version: 1\n# changed early\n');
  renameSync(join(dir, 'tmp'), file);
  await pollUntil('the reload of the early change', () => (calls >= 1 ? true : undefined));
  assert.equal(calls, 1);
});
