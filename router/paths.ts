// Where the checkout's own files are (the policy schema, the shipped policy), whether the
// router runs from its sources in router/ or from the build in dist/router/.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const routerDir = dirname(fileURLToPath(import.meta.url));
const above = dirname(routerDir);

/** True when this is the build (dist/router/), not the TypeScript sources. */
export const RUNNING_BUILT = basename(above) === 'dist' && existsSync(join(dirname(above), 'package.json'));

/** The checkout's root directory. */
export const PACKAGE_ROOT = RUNNING_BUILT ? dirname(above) : above;

export function packagePath(relative: string): string {
  return join(PACKAGE_ROOT, relative);
}
