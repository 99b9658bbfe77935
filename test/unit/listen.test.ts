// The listen address as serve reads it, and which addresses count as loopback (no warning).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatListen, isLoopback, parseListen } from '../../router/app.ts';

test('parseListen: HOST:PORT, IPv6 in brackets, port 0 to 65535', () => {
  assert.deepEqual(parseListen('127.0.0.1:4000'), { host: '127.0.0.1', port: 4000 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('gpu-box.lan:65535'), { host: 'gpu-box.lan', port: 65535 });
  for (const bad of ['4000', ':4000', '127.0.0.1:', '127.0.0.1:65536', '::1:4000', 'a b:1', '127.0.0.1:4000 ']) {
    assert.throws(() => parseListen(bad), /is not HOST:PORT/, bad);
  }
});

test('formatListen puts an IPv6 host back in brackets', () => {
  assert.equal(formatListen({ host: '::1', port: 4000 }), '[::1]:4000');
  assert.equal(formatListen(parseListen('127.0.0.1:80')), '127.0.0.1:80');
});

test('isLoopback: 127.0.0.0/8, ::1, localhost and 127.x as IPv6; nothing else', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1', '::FFFF:127.0.0.1']) assert.equal(isLoopback(host), true, host);
  for (const host of ['0.0.0.0', '::', '192.168.1.10', '::ffff:192.168.1.10', '1270.0.0.1', 'gpu-box.lan']) assert.equal(isLoopback(host), false, host);
});
