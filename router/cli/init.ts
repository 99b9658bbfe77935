// `homelab-router init --upstream NAME=URL [...] [--out FILE] [--force]`: probes each server,
// plans a policy from what they report (router/init/plan.ts) and writes it, checked, as YAML.
import { existsSync, writeFileSync } from 'node:fs';
import { detectUpstream, UnreachableError, baseUrlOf } from '../init/detect.ts';
import type { UpstreamFacts } from '../init/facts.ts';
import { planPolicy } from '../init/plan.ts';
import { renderPolicy } from '../init/render.ts';
import { loadPolicyFile, parsePolicyText, PolicyError } from '../policy/load.ts';
import { packagePath } from '../paths.ts';

export const INIT_USAGE = 'usage: homelab-router init --upstream NAME=URL [--upstream NAME=URL ...] [--api-key-env NAME=VARIABLE ...] [--out FILE] [--force]';

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PROBE_TIMEOUT_MS = 5000;

export interface InitOptions {
  upstream: string[];
  /** NAME=VARIABLE: the upstream's bearer key is in that environment variable. */
  apiKeyEnv: string[];
  out: string | undefined;
  force: boolean;
}

/** NAME=URL pairs, or the first complaint about them. */
export function parseUpstreams(args: string[]): { pairs: Array<{ name: string; url: string }>; error?: string } {
  const pairs: Array<{ name: string; url: string }> = [];
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : '';
    const url = eq > 0 ? arg.slice(eq + 1) : '';
    if (!ROUTE_NAME.test(name) || url === '') return { pairs, error: `--upstream "${arg}" is not NAME=URL (a route name of letters, digits, . _ -, then its base URL, e.g. gpu1=http://192.168.1.20:8000/v1)` };
    try {
      baseUrlOf(url);
    } catch (err) {
      return { pairs, error: `--upstream ${name}: ${(err as Error).message}` };
    }
    if (pairs.some((p) => p.name === name)) return { pairs, error: `--upstream ${name} is given twice` };
    pairs.push({ name, url });
  }
  if (pairs.length === 0) return { pairs, error: 'init needs at least one --upstream NAME=URL' };
  return { pairs };
}

export async function init(opts: InitOptions): Promise<number> {
  const { pairs, error } = parseUpstreams(opts.upstream);
  if (error) {
    console.error(`${error}\n${INIT_USAGE}`);
    return 2;
  }
  const keyEnv = new Map<string, string>();
  for (const arg of opts.apiKeyEnv) {
    const [name, variable] = arg.split('=', 2) as [string, string | undefined];
    const why = !pairs.some((p) => p.name === name) ? `no --upstream is named "${name}"` : !variable || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable) ? 'it is not NAME=VARIABLE' : !process.env[variable] ? `$${variable} is not set` : null;
    if (why) {
      console.error(`--api-key-env ${arg}: ${why}\n${INIT_USAGE}`);
      return 2;
    }
    keyEnv.set(name, variable!);
  }
  if (opts.out !== undefined && existsSync(opts.out) && !opts.force) {
    console.error(`${opts.out} already exists; nothing was written (--force overwrites it)`);
    return 1;
  }

  const results = await Promise.allSettled(
    pairs.map(async (p) => {
      const variable = keyEnv.get(p.name);
      const facts = await detectUpstream(p.name, p.url, PROBE_TIMEOUT_MS, variable ? process.env[variable] : undefined);
      return variable ? { ...facts, apiKeyEnv: variable } : facts;
    }),
  );
  const facts: UpstreamFacts[] = [];
  let failed = false;
  for (const r of results) {
    if (r.status === 'fulfilled') facts.push(r.value);
    else {
      failed = true;
      console.error(r.reason instanceof UnreachableError ? r.reason.message : `probe failed: ${(r.reason as Error).message}`);
    }
  }
  if (failed) {
    console.error('nothing was written: every --upstream must answer GET <url>/models');
    return 1;
  }

  const template = loadPolicyFile(packagePath('routing_policy.yaml')).doc;
  const plan = planPolicy(facts, { classifier: template.classifier, buckets: template.buckets });
  if (plan.errors.length > 0) {
    for (const e of plan.errors) console.error(e);
    return 1;
  }
  const file = opts.out ?? 'policy';
  const text = renderPolicy(plan, opts.out ?? '<this file>');
  // What is written is what `check` accepts: a plan the loader refuses is a bug, said as one.
  try {
    parsePolicyText(text, file);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    console.error(`init planned a policy that does not validate (a bug in init):\n  ${err.errors.join('\n  ')}`);
    return 1;
  }

  const summary = facts.map((f) => {
    const r = (plan.doc.routes as Record<string, any>)[f.name];
    return `  ${f.name.padEnd(12)} ${f.runtimeLabel}: ${f.model}, ${r.context_tokens} ctx, ${r.slots} slot${r.slots === 1 ? '' : 's'}${r.vision ? ', sees images' : ''}`;
  });
  if (opts.out === undefined) {
    process.stdout.write(text);
    console.error(['homelab-router init: found', ...summary].join('\n'));
    return 0;
  }
  try {
    writeFileSync(opts.out, text, { flag: opts.force ? 'w' : 'wx' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    console.error(e.code === 'EEXIST' ? `${opts.out} already exists; nothing was written (--force overwrites it)` : `cannot write ${opts.out}: ${e.code ?? e.message}`);
    return 1;
  }
  const guessedKeys = Object.entries(plan.guesses).flatMap(([route, g]) => Object.keys(g).map((k) => `routes.${route}.${k}`));
  console.log(
    [
      `wrote ${opts.out}`,
      ...summary,
      ...(guessedKeys.length > 0 ? [`guessed (the file says why; set them to what the servers run with): ${guessedKeys.join(', ')}`] : []),
      'next:',
      `  npx homelab-router check ${opts.out}`,
      `  npx homelab-router serve --policy ${opts.out}`,
    ].join('\n'),
  );
  return 0;
}
