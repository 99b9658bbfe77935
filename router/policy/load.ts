// read → parse YAML → schema (fills defaults) → semantic checks → frozen CompiledPolicy.
// Never touches live state: router/policy/store.ts decides whether to swap.
import { readFileSync } from 'node:fs';
import { load as parseYaml } from 'js-yaml';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import { schemaErrors } from './schema.ts';
import type { Policy } from './types.ts';

export class PolicyError extends Error {
  readonly errors: string[];
  constructor(source: string, errors: string[]) {
    super(`invalid policy ${source}:\n  ${errors.join('\n  ')}`);
    this.name = 'PolicyError';
    this.errors = errors;
  }
}

export function parsePolicyText(text: string, source = 'policy'): CompiledPolicy {
  let doc: unknown;
  try {
    doc = parseYaml(text, { filename: source });
  } catch (err) {
    throw new PolicyError(source, [`(yaml): ${(err as Error).message.split('\n')[0]}`]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new PolicyError(source, ['(root): must be a mapping of policy keys']);
  }
  const structural = schemaErrors(doc);
  if (structural.length > 0) throw new PolicyError(source, structural);
  const { policy, errors } = compilePolicy(doc as Policy);
  if (!policy) throw new PolicyError(source, errors);
  return policy;
}

export function loadPolicyFile(path: string): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError(path, [`(file): cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parsePolicyText(text, path);
}
