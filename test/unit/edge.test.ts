// The edge's decisions as pure functions: request-target forms, Host, Origin, content type.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { absoluteForm, hostAllowed, isJsonContentType, originVerdict, type EdgeRules } from '../../router/http/edge.ts';

const rules = (origins: string[] = [], hosts: string[] = []): EdgeRules => ({
  origins: origins.length ? new Set(origins) : null,
  anyOrigin: origins.includes('*'),
  hosts: hosts.length ? new Set(hosts) : null,
});

test('absoluteForm: the path (with query) and authority of an absolute target; null for origin-form', () => {
  assert.deepEqual(absoluteForm('http://router.lan:4000/v1/models?x=1'), { path: '/v1/models?x=1', authority: 'router.lan:4000' });
  assert.deepEqual(absoluteForm('HTTP://router.lan'), { path: '/', authority: 'router.lan' });
  assert.deepEqual(absoluteForm('http://user:pw@router.lan/healthz'), { path: '/healthz', authority: 'router.lan' });
  assert.deepEqual(absoluteForm('http://router.lan?x'), { path: '/?x', authority: 'router.lan' });
  assert.equal(absoluteForm('/v1/models'), null);
  assert.equal(absoluteForm('*'), null);
});

test('hostAllowed: any when none is listed; else host or host:port, case-insensitive', () => {
  assert.equal(hostAllowed(rules(), 'anything:1'), true);
  const r = rules([], ['router.lan', '192.168.1.20:4000', '[::1]']);
  for (const h of ['router.lan', 'Router.LAN:4000', '192.168.1.20:4000', '[::1]:4000']) assert.equal(hostAllowed(r, h), true, h);
  for (const h of ['evil.example', '192.168.1.20:5000', '192.168.1.20', undefined]) assert.equal(hostAllowed(r, h), false, String(h));
});

test('originVerdict: none, own (same host:port), listed, foreign', () => {
  const r = rules(['http://ui.lan:8080']);
  assert.equal(originVerdict(r, undefined, 'router.lan:4000'), 'none');
  assert.equal(originVerdict(r, 'http://router.lan:4000', 'router.lan:4000'), 'own');
  assert.equal(originVerdict(r, 'https://Router.lan:4000', 'router.lan:4000'), 'own');
  assert.equal(originVerdict(r, 'http://ui.lan:8080', 'router.lan:4000'), 'listed');
  assert.equal(originVerdict(r, 'http://UI.lan:8080', 'router.lan:4000'), 'listed');
  for (const o of ['http://router.lan:4001', 'http://ui.lan', 'null', 'file://', 'http://evil.example']) assert.equal(originVerdict(r, o, 'router.lan:4000'), 'foreign', o);
  assert.equal(originVerdict(rules(['*']), 'http://anything.example', 'router.lan:4000'), 'listed');
});

test('isJsonContentType: application/json with any parameters, any case; nothing else', () => {
  for (const v of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset=UTF-8', ' application/json ']) assert.equal(isJsonContentType(v), true, v);
  for (const v of [undefined, '', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json']) assert.equal(isJsonContentType(v), false, String(v));
});
