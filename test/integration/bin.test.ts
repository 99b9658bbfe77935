// bin/homelab-router.js picks what to run: the build in dist/ when its stamp is newer than every
// source file, else the TypeScript sources through tsx. Exercised on a throwaway checkout whose
// two entry points only say which one ran, so no router starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, REPO, cliEnv } from '../helpers/cli.ts';

function checkout(opts: { built: boolean }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-bin-'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin/homelab-router.js'));
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  mkdirSync(join(dir, 'router/cli'), { recursive: true });
  writeFileSync(join(dir, 'router/cli/main.ts'), "const from: string = 'source';\nconsole.log(from);\n");
  if (opts.built) {
    mkdirSync(join(dir, 'dist/router/cli'), { recursive: true });
    writeFileSync(join(dir, 'dist/router/cli/main.js'), "console.log('built');\n");
    writeFileSync(join(dir, 'dist/.built'), 'stamp\n');
    // The sources an hour older than the stamp, as after `npm run build`.
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir, 'router/cli/main.ts'), hourAgo, hourAgo);
  }
  return dir;
}

function run(dir: string, extra: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(dir, 'bin/homelab-router.js')], { cwd: dir, env: cliEnv(extra), timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr })));
  });
}

test('bin: runs the build when it is newer than every source file', async (t) => {
  const dir = checkout({ built: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { stdout, stderr } = await run(dir);
  assert.equal(stdout.trim(), 'built');
  assert.equal(stderr, '');
});

test('bin: a source newer than the build runs the sources and says why', async (t) => {
  const dir = checkout({ built: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const inFuture = new Date(Date.now() + 3_600_000);
  utimesSync(join(dir, 'router/cli/main.ts'), inFuture, inFuture);
  const { stdout, stderr } = await run(dir);
  assert.equal(stdout.trim(), 'source');
  assert.match(stderr, /dist\/ is older than router\/cli\/main\.ts; running the sources \(npm run build refreshes it\)/);
});

test('bin: no build runs the sources and says so; HOMELAB_ROUTER_FROM_SOURCE=1 forces them quietly', async (t) => {
  const bare = checkout({ built: false });
  const built = checkout({ built: true });
  t.after(() => {
    rmSync(bare, { recursive: true, force: true });
    rmSync(built, { recursive: true, force: true });
  });
  // A fresh clone has no dist/: it works, and says why it is slower than it could be.
  assert.deepEqual(await run(bare), { stdout: 'source\n', stderr: 'homelab-router: no build in dist/; running the sources through tsx, which starts slower (npm run build makes one)\n' });
  assert.deepEqual(await run(bare, { HOMELAB_ROUTER_FROM_SOURCE: '1' }), { stdout: 'source\n', stderr: '' });
  assert.deepEqual(await run(built, { HOMELAB_ROUTER_FROM_SOURCE: '1' }), { stdout: 'source\n', stderr: '' });
});
