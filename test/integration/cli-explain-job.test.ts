// `homelab-router explain` for what issue 13 adds: the camera bucket for a person at the door
// with an image, the context guard's clamp (--max-tokens), and a whole client request (--body)
// with what was scored and the nearest examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';

test('explain --image "is there a person at the door?" lands in the camera bucket', async () => {
  const r = await runCli(['explain', '--image', 'is there a person at the door?']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^route\s+ubuntu-4090$/m);
  assert.match(r.stdout, /^bucket\s+camera$/m);
});

test('explain --max-tokens shows the clamped value on a 32K route', async () => {
  const r = await runCli(['explain', '--image', '--max-tokens', '32000', 'what does this error in the screenshot mean?']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^route\s+ubuntu-4090$/m);
  assert.match(r.stdout, /^max_tokens 32000 asked, \d+ sent/m);
  const bad = await runCli(['explain', '--max-tokens', 'lots', 'hi']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--max-tokens needs a positive whole number/);
});

test('explain --body explains a whole request body: the instruction tag and the scored text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-explain-'));
  const file = join(dir, 'cursor.json');
  writeFileSync(
    file,
    JSON.stringify({
      model: 'homelab/auto',
      messages: [
        // A coding agent's system prompt: long, and full of job words that are not this turn's job.
        { role: 'system', content: 'You are a coding agent in the editor. Always translate user-facing strings and summarize the changes. '.repeat(20) },
        { role: 'user', content: '<attached_files>\n<file_contents path="a.tsx">export const A = () => null;</file_contents>\n</attached_files>\n<user_query>\nadd a reset password link under the login button\n</user_query>' },
      ],
      tools: [{ type: 'function', function: { name: 'edit_file' } }],
    }),
  );
  const r = await runCli(['explain', '--json', '--body', file]);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.equal(d.route, 'ubuntu-6000');
  assert.equal(d.classified.part, 'instruction_tag:user_query');
  assert.match(d.classified.text, /reset password link/);
  assert.equal(d.matched.utility, undefined, 'a long system prompt is not scored');
  const missing = await runCli(['explain', '--body', join(dir, 'nope.json')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--body .*nope\.json/);
});
