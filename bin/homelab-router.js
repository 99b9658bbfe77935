#!/usr/bin/env node
// Runs the build in dist/ (`npm run build`) when it is at least as new as every source file in
// router/; otherwise the TypeScript sources through tsx's loader, so a checkout works with no
// build step, and says so on stderr. The build starts faster and uses less memory and CPU
// (README "Performance"). HOMELAB_ROUTER_FROM_SOURCE=1 always runs the sources, quietly.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const stamp = join(root, 'dist/.built');

/** The build's stamp is newer than every file under router/ (so no source changed since). */
function buildIsFresh() {
  let builtAt;
  try {
    builtAt = statSync(stamp).mtimeMs;
  } catch {
    process.stderr.write('homelab-router: no build in dist/; running the sources through tsx, which starts slower (npm run build makes one)\n');
    return false;
  }
  const sources = join(root, 'router');
  for (const file of readdirSync(sources, { recursive: true })) {
    const stat = statSync(join(sources, file));
    if (stat.isFile() && stat.mtimeMs > builtAt) {
      process.stderr.write(`homelab-router: dist/ is older than router/${file}; running the sources (npm run build refreshes it)\n`);
      return false;
    }
  }
  return true;
}

if (process.env.HOMELAB_ROUTER_FROM_SOURCE !== '1' && buildIsFresh()) {
  await import('../dist/router/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../router/cli/main.ts');
}
