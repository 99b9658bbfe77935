// The README's policy reference names every key the schema accepts, so an operator never has
// to read the schema or the source to learn what a key does and what it defaults to.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const schema = JSON.parse(readFileSync(new URL('../../policy/routing_policy.schema.json', import.meta.url), 'utf8'));
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** Every property name the schema defines, at any depth. */
function keys(node: any, out = new Set<string>()): Set<string> {
  if (node === null || typeof node !== 'object') return out;
  if (node.properties) for (const k of Object.keys(node.properties)) out.add(k);
  for (const v of Object.values(node)) keys(v, out);
  return out;
}

test('README documents every policy key (in backticks, with its section)', () => {
  const missing = [...keys(schema)].filter((k) => !new RegExp('`[^`\\n]*\\b' + k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\b[^`\\n]*`').test(readme));
  assert.deepEqual(missing, []);
  assert.match(readme, /^## Policy reference$/m);
  for (const runtime of ['vllm', 'lmstudio', 'llamacpp', 'ollama', 'openai']) assert.match(readme, new RegExp(`^\\| \`${runtime}\` \\|`, 'm'), runtime);
});
