// The code of a schema worker thread: plain CommonJS, so it needs no TypeScript loader (the
// router runs from sources through tsx or from the build), with ajv and re2js handed over by
// path. Each worker keeps its own compiled validators, by schema key, most recent last.
//
// Patterns (`pattern`, `patternProperties`, `propertyNames.pattern`) run on RE2 through
// re2js, a linear-time engine: `^(a+)+$` against "aaa…a!" takes microseconds instead of
// doubling per letter. RE2 has no lookaround or backreferences; a schema using them does not
// compile (the client gets 400 naming the pattern), as in the grammar engines of vLLM and
// llama.cpp that constrain the same output.

export interface WorkerJob {
  id: number;
  key: string;
  text: string;
  /** The model's content (JSON text) to check; absent for a compile-only job. */
  content?: string;
}

export type WorkerReply =
  | { id: 0; kind: 'ready' }
  | { id: number; kind: 'compiled' }
  | { id: number; kind: 'compile_error'; message: string }
  | { id: number; kind: 'valid' }
  | { id: number; kind: 'invalid_json'; errors: string[] }
  | { id: number; kind: 'schema_mismatch'; errors: string[] };

export const MAX_CACHED_PER_WORKER = 64;

export const SCHEMA_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { Ajv } = require(workerData.ajv);
const { RE2JS } = require(workerData.re2js);

function linearRegExp(pattern, u) {
  let re;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (err) {
    throw new Error('pattern ' + JSON.stringify(pattern) + ' is not supported by the linear-time engine (RE2: no lookaround or backreferences): ' + err.message);
  }
  // ajv keys compiled patterns by toString(): it must tell patterns apart.
  return { test: (s) => re.test(s), toString: () => '/' + pattern + '/' + u };
}
linearRegExp.code = 'linearRegExp';

const ajv = new Ajv({ strict: false, allErrors: true, logger: false, code: { regExp: linearRegExp } });
const cache = new Map();

function validatorFor(key, text) {
  let v = cache.get(key);
  if (v) {
    cache.delete(key);
    cache.set(key, v);
    return v;
  }
  v = ajv.compile(JSON.parse(text));
  // ajv keeps every compiled schema too; the cache here is the one that bounds memory.
  ajv.removeSchema();
  if (cache.size >= ${MAX_CACHED_PER_WORKER}) cache.delete(cache.keys().next().value);
  cache.set(key, v);
  return v;
}

function describe(err) {
  return err instanceof RangeError ? 'it recurses too deeply to compile' : String(err && err.message || err);
}

// ajv compiles its meta-schema on the first compile: done here, before the worker says it is
// ready, so no client's time budget pays for starting a worker.
ajv.compile({ type: 'object', properties: { warm: { type: 'string', pattern: '^w' } } });
ajv.removeSchema();
parentPort.postMessage({ id: 0, kind: 'ready' });

parentPort.on('message', (job) => {
  let validate;
  try {
    validate = validatorFor(job.key, job.text);
  } catch (err) {
    parentPort.postMessage({ id: job.id, kind: 'compile_error', message: describe(err) });
    return;
  }
  if (job.content === undefined) {
    parentPort.postMessage({ id: job.id, kind: 'compiled' });
    return;
  }
  let value;
  try {
    value = JSON.parse(job.content);
  } catch (err) {
    parentPort.postMessage({ id: job.id, kind: 'invalid_json', errors: [err.message] });
    return;
  }
  try {
    if (validate(value)) {
      parentPort.postMessage({ id: job.id, kind: 'valid' });
      return;
    }
    const errors = (validate.errors || []).slice(0, 20).map((e) => (e.instancePath || '(root)') + ' ' + (e.message || 'is invalid'));
    parentPort.postMessage({ id: job.id, kind: 'schema_mismatch', errors });
  } catch (err) {
    const why = err instanceof RangeError ? 'is nested too deeply to check against this schema' : 'could not be checked: ' + String(err && err.message || err);
    parentPort.postMessage({ id: job.id, kind: 'schema_mismatch', errors: ['(root) ' + why] });
  }
});
`;
