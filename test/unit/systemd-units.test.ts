import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].some((p) => existsSync(p));

test('systemd units pass systemd-analyze verify', { skip: !analyze && 'systemd-analyze not installed (apt-get install systemd)' }, () => {
  const out = execFileSync('bash', ['scripts/verify-systemd.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  assert.match(out, /homelab-router\.service/);
});
