// Every policy in policy/examples/ passes `homelab-router check`, and routes what its header
// comment says it routes (through `explain --json`, as an operator would look).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

const DIR = 'policy/examples';
const examples = readdirSync(new URL(`../../${DIR}/`, import.meta.url)).filter((f) => f.endsWith('.yaml')).sort();

test('policy/examples holds the three promised examples', () => {
  assert.deepEqual(examples, ['one-gpu-cpu-fallback.yaml', 'reference-lab.yaml', 'two-gpus-code-chat.yaml']);
});

for (const file of examples) {
  test(`check ${DIR}/${file}: exit 0`, async () => {
    const r = await runCli(['check', `${DIR}/${file}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: valid \(\d+ routes, \d+ buckets, sha256:[0-9a-f]{64}\)$/m);
  });
}

const CASES: Record<string, Array<[string, boolean, string]>> = {
  'one-gpu-cpu-fallback.yaml': [
    ['Refactor this python function', false, 'gpu'],
    ['tell me a joke', false, 'gpu'],
  ],
  'two-gpus-code-chat.yaml': [
    ['Refactor this python function', false, 'code'],
    ['tell me a joke', false, 'chat'],
    ['what is in this picture?', true, 'chat'],
  ],
  'reference-lab.yaml': [
    ['Refactor this FastAPI handler and add pytest tests', false, 'ubuntu-6000'],
    ['what are the trade offs of this architecture?', false, 'spark'],
    ['classify this email as spam: yes or no', false, 'ubuntu-4090'],
    ['Frigate event: motion detected on the driveway', true, 'ubuntu-4090'],
    ['tell me a joke', false, 'win-5090'],
  ],
};

for (const [file, cases] of Object.entries(CASES)) {
  test(`${file} routes as its header says`, async () => {
    for (const [prompt, image, route] of cases) {
      const r = await runCli(['explain', '--json', '--policy', `${DIR}/${file}`, ...(image ? ['--image'] : []), prompt]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).route, route, `${prompt}${image ? ' (with an image)' : ''}`);
    }
  });
}
