// Reloads the policy when its file changes on disk. Watches the folder, not the file, so an
// editor that writes a temp file and renames it over the policy is seen; a stat poll on the
// path catches single-file bind mounts, where the folder sees no event at all. Every trigger
// is debounced into one reload, and a reload whose hash is unchanged is a no-op.
import { statSync, unwatchFile, watchFile } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface PolicyWatcher {
  close(): Promise<void>;
}

export function watchPolicyFile(path: string, onChange: () => void, opts: { debounceMs?: number; pollMs?: number } = {}): PolicyWatcher {
  const file = resolve(path);
  const name = basename(file);
  const debounceMs = opts.debounceMs ?? 250;
  let timer: NodeJS.Timeout | null = null;
  // Both sources usually report the same change, the folder event at once and the stat poll up
  // to pollMs later: acting only when the file's identity or times moved makes it one reload.
  let seen = signature(file);
  const trigger = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      const now = signature(file);
      if (now === seen) return;
      seen = now;
      onChange();
    }, debounceMs);
  };

  const watcher: FSWatcher = watch(dirname(file), {
    ignoreInitial: true,
    depth: 0,
    atomic: true,
    awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 },
  });
  watcher.on('all', (_event, changed) => {
    if (basename(changed) === name) trigger();
  });
  // A change made before the folder watch was armed (and before the stat poll took its first
  // reading) reaches neither source; one check once armed compares against `seen`, taken when
  // this was called, so such a change still reloads, and no change stays a no-op.
  watcher.once('ready', trigger);

  const onStat = (cur: { mtimeMs: number; ino: number; size: number }, prev: { mtimeMs: number; ino: number; size: number }) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) trigger();
  };
  watchFile(file, { interval: opts.pollMs ?? 2000, persistent: false }, onStat);

  return {
    async close() {
      if (timer) clearTimeout(timer);
      unwatchFile(file, onStat);
      await watcher.close();
    },
  };
}

function signature(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    return 'missing';
  }
}
