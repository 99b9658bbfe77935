// `homelab-router keys create|list|rotate|revoke` (SPEC §12) as a real process against a
// real router on loopback: each verb changes the running router, with no restart.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cliEnv, runCli } from '../helpers/cli.ts';
import { postJson, startLab } from '../helpers/lab.ts';

const TOKEN = 'c4d1e8f2a7b3c9d0e5f6a1b2c3d4e5f6';

describe('homelab-router keys', () => {
  test('create, list, rotate and revoke change a running router', async (t) => {
    const lab = await startLab({ adminToken: TOKEN, edit: (doc) => (doc.auth = { mode: 'keys' }) });
    t.after(() => lab.close());
    const env = cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN, HOMELAB_ROUTER_URL: lab.base });
    const chat = (key: string, model = 'homelab/chat') => postJson(`${lab.url}/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` });

    const created = await runCli(['keys', 'create', 'discord-bot', '--models', 'homelab/chat,homelab/fast', '--rpm', '30', '--monthly-tokens', '2000000'], { env });
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim().split('\n').at(-1)!;
    assert.match(key, /^hlr_[0-9A-Za-z]{43}$/);
    assert.equal((await chat(key)).status, 200);
    assert.equal((await chat(key, 'homelab/code')).status, 403);

    const list = await runCli(['keys', 'list'], { env });
    assert.equal(list.code, 0, list.stderr);
    const [head, row] = list.stdout.trim().split('\n');
    assert.match(head!, /^NAME\s+ID\s+PREFIX\s+STATE\s+MODELS\s+RPM/);
    assert.match(row!, /^discord-bot\s+key_\S+\s+hlr_\S+\s+active\s+homelab\/chat,homelab\/fast\s+30\s/);
    assert.ok(!list.stdout.includes(key), 'list never prints a secret');
    const json = JSON.parse((await runCli(['keys', 'list', '--json'], { env })).stdout);
    assert.equal(json.keys[0].requests_month, 1);
    assert.equal(json.keys[0].monthly_tokens, 2000000);

    const rotated = await runCli(['keys', 'rotate', 'discord-bot'], { env });
    assert.equal(rotated.code, 0, rotated.stderr);
    const next = rotated.stdout.trim().split('\n').at(-1)!;
    assert.match(next, /^hlr_/);
    assert.equal((await chat(key)).status, 401);
    assert.equal((await chat(next)).status, 200);

    const revoked = await runCli(['keys', 'revoke', 'discord-bot'], { env });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await chat(next)).status, 401);
    assert.match((await runCli(['keys', 'list'], { env })).stdout, /discord-bot\s+\S+\s+\S+\s+revoked/);
  });

  test('bad arguments exit 2 with the usage; an unknown name or a refused create exits 1', async (t) => {
    const lab = await startLab({ adminToken: TOKEN });
    t.after(() => lab.close());
    const env = cliEnv({ HOMELAB_ROUTER_ADMIN_TOKEN: TOKEN, HOMELAB_ROUTER_URL: lab.base });
    for (const args of [['keys'], ['keys', 'create'], ['keys', 'frobnicate', 'x'], ['keys', 'create', 'x', '--rpm', 'many']]) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /usage: homelab-router keys/);
    }
    assert.equal((await runCli(['keys', 'list'], { env: cliEnv({ HOMELAB_ROUTER_URL: lab.base }) })).code, 2);
    const missing = await runCli(['keys', 'revoke', 'nobody'], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no live key named "nobody"/);
    const bad = await runCli(['keys', 'create', 'bad name'], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^400: name/m);
    assert.equal((await runCli(['keys', 'list', '--json'], { env })).stdout.includes('"keys": []'), true);
  });
});
