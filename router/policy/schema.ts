// Compiles policy/routing_policy.schema.json once, and turns ajv's errors into
// "dotted.path: message" lines an operator can act on.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { packagePath } from '../paths.ts';

const SCHEMA_PATH = packagePath('policy/routing_policy.schema.json');

export const policySchema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Record<string, unknown>;

const ajv = new Ajv({ strict: true, allErrors: true, useDefaults: true, allowUnionTypes: true });
const validate = ajv.compile(policySchema);

/** Validates (and fills defaults into) `doc` in place. Returns one line per problem. */
export function schemaErrors(doc: unknown): string[] {
  if (validate(doc)) return [];
  return dedupe((validate.errors ?? []).filter(notOneOfNoise).map(describe));
}

function describe(e: ErrorObject): string {
  const path = e.instancePath.split('/').slice(1).map(unescapePointer).join('.') || '(root)';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path === '(root)' ? '' : path + '.'}${(e.params as { additionalProperty: string }).additionalProperty}: unknown key`;
    case 'required':
      return `${path === '(root)' ? '' : path + '.'}${(e.params as { missingProperty: string }).missingProperty}: is required`;
    case 'enum':
      return `${path}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${path}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    case 'propertyNames':
      return `${path}: invalid name ${JSON.stringify((e.params as { propertyName: string }).propertyName)}`;
    default:
      return `${path}: ${e.message ?? 'is invalid'}`;
  }
}

// A failed `oneOf` reports every branch's complaint plus "must match exactly one schema";
// the branch errors already say what is wrong, so the summary line is dropped.
function notOneOfNoise(e: ErrorObject): boolean {
  return e.keyword !== 'oneOf' && e.keyword !== 'if';
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function dedupe(lines: string[]): string[] {
  return [...new Set(lines)];
}
