// The fail-closed schema guard: everything the router does with a client's JSON Schema
// (response_format.json_schema.schema) and nothing else. At request time `prepare` checks the
// bounds (fail_closed.max_schema_*), refuses same-value $ref cycles, and compiles the schema
// on a worker within fail_closed.compile_timeout_ms; any of these failing is a 400 naming the
// reason, before an upstream is called. After the upstream answered, `check` validates the
// model's content on a worker within fail_closed.validate_timeout_ms; running past it is the
// outcome `validation_timeout`, which fail-closed handling treats like invalid output.
import { createHash } from 'node:crypto';
import { RouterError } from '../errors.ts';
import type { FailClosedLimits } from '../policy/types.ts';
import { schemaBoundsError, schemaTextError } from './bounds.ts';
import { refCycle } from './ref-cycles.ts';
import { SchemaWorkers, type PoolStats } from './workers.ts';

export interface PreparedSchema {
  key: string;
  text: string;
}

export type SchemaVerdict =
  | { ok: true }
  | { ok: false; outcome: 'invalid_json' | 'schema_mismatch' | 'validation_timeout'; errors: string[] };

/** Schemas already compiled (null) or refused (the reason), by key; bounded, oldest out first. */
const MAX_KNOWN = 256;

const PARAM = 'response_format';

function refuse(message: string): RouterError {
  return new RouterError('invalid_request', `response_format.json_schema.schema: ${message}`, { param: PARAM });
}

export class SchemaGuard {
  readonly #workers: SchemaWorkers;
  readonly #known = new Map<string, string | null>();

  constructor(workers = 2) {
    this.#workers = new SchemaWorkers(workers);
  }

  stats(): PoolStats {
    return this.#workers.stats();
  }

  async prepare(schema: unknown, limits: FailClosedLimits): Promise<PreparedSchema> {
    if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw refuse('must be a JSON Schema object');
    const bound = schemaBoundsError(schema, limits);
    if (bound) throw refuse(bound);
    const text = JSON.stringify(schema);
    const exact = schemaTextError(text, limits);
    if (exact) throw refuse(exact);
    const key = createHash('sha256').update(text).digest('base64url');
    const known = this.#known.get(key);
    if (known === null) return { key, text };
    if (known !== undefined) throw refuse(known);
    const cycle = refCycle(schema);
    if (cycle !== null) throw this.#remember(key, `"$ref": ${JSON.stringify(cycle)} refers back to a schema that applies to the same value, so checking it would never end`);

    this.#workers.resize(limits.workers);
    const out = await this.#workers.run({ key, text }, { runMs: limits.compile_timeout_ms, compileMs: 0 });
    switch (out.kind) {
      case 'compiled':
        this.#remember(key, null);
        return { key, text };
      case 'compile_error':
        throw this.#remember(key, `not a usable JSON Schema (${out.message})`);
      case 'timeout':
        throw refuse(`took longer than fail_closed.compile_timeout_ms (${limits.compile_timeout_ms} ms) to compile`);
      case 'crashed':
        throw refuse(`could not be compiled (${out.message})`);
      case 'busy':
        throw new RouterError('upstream_saturated', 'fail-closed schema checks are saturated; retry shortly', { retryAfterS: 1 });
      case 'unavailable':
        throw new RouterError('upstream_unavailable', `fail-closed schema checks are unavailable: ${out.message}`, { retryAfterS: 5 });
      default:
        throw new Error(`unexpected schema worker answer ${out.kind}`);
    }
  }

  /** Validates the model's content (JSON text) against a prepared schema, off the event loop. */
  async check(schema: PreparedSchema, content: string, limits: FailClosedLimits): Promise<SchemaVerdict> {
    this.#workers.resize(limits.workers);
    const out = await this.#workers.run({ key: schema.key, text: schema.text, content }, { runMs: limits.validate_timeout_ms, compileMs: limits.compile_timeout_ms });
    switch (out.kind) {
      case 'valid':
        return { ok: true };
      case 'invalid_json':
      case 'schema_mismatch':
        return { ok: false, outcome: out.kind, errors: out.errors };
      case 'timeout':
        return { ok: false, outcome: 'validation_timeout', errors: [`checking the output took longer than fail_closed.validate_timeout_ms (${limits.validate_timeout_ms} ms)`] };
      case 'busy':
        return { ok: false, outcome: 'validation_timeout', errors: ['schema checks are saturated: the output could not be checked in time'] };
      case 'crashed':
      case 'unavailable':
        return { ok: false, outcome: 'validation_timeout', errors: [`the output could not be checked (${out.message})`] };
      case 'compile_error':
        return { ok: false, outcome: 'schema_mismatch', errors: [`the schema no longer compiles (${out.message})`] };
      default:
        throw new Error(`unexpected schema worker answer ${out.kind}`);
    }
  }

  close(): Promise<void> {
    return this.#workers.close();
  }

  #remember(key: string, refusal: string | null): RouterError {
    if (this.#known.size >= MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
    this.#known.set(key, refusal);
    return refuse(refusal ?? '');
  }
}
