// Where the checkout's own files are (the policy schema, the shipped policy), whether the
// router runs from its sources in router/ or from the build in dist/router/.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

/** True when this is the build (dist/router/paths.js), not the TypeScript sources. */
export const RUNNING_BUILT = here.endsWith('.js');

/** The checkout's root directory: above router/, or above dist/router/. */
export const PACKAGE_ROOT = RUNNING_BUILT ? dirname(dirname(dirname(here))) : dirname(dirname(here));

export function packagePath(relative: string): string {
  return join(PACKAGE_ROOT, relative);
}

/** Where the request log and keys live: $HOMELAB_ROUTER_DATA_DIR, default ./data. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOMELAB_ROUTER_DATA_DIR || './data';
}
