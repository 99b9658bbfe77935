import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertNestingWithin, decodeJson, MAX_JSON_NESTING } from '../../router/http/body.ts';
import { RouterError } from '../../router/errors.ts';

const deep = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);

describe('JSON body nesting bound', () => {
  test('nesting up to the bound passes; one level more is a 400 naming the bound', () => {
    assertNestingWithin(Buffer.from(deep(10)), 10);
    assert.throws(() => assertNestingWithin(Buffer.from(deep(11)), 10), (err: unknown) => {
      assert.ok(err instanceof RouterError);
      assert.equal(err.code, 'invalid_request');
      assert.match(err.message, /deeper than 10 levels/);
      return true;
    });
  });

  test('brackets inside strings, and escaped quotes, are not nesting', () => {
    const text = JSON.stringify({ a: '[[[[[[[[[[[[', b: 'say \\"{{{{{{{{{{{{\\"', c: [{ d: '"]]]]' }] });
    assertNestingWithin(Buffer.from(text), 3);
    assert.throws(() => assertNestingWithin(Buffer.from(text), 2), /deeper than 2 levels/);
  });

  test('siblings do not add up: depth returns after each close', () => {
    assertNestingWithin(Buffer.from(JSON.stringify(Array.from({ length: 1000 }, () => [[{}]]))), 4);
  });

  test('decodeJson refuses a large, deeply nested body before parsing it', () => {
    const levels = MAX_JSON_NESTING + 1;
    const body = Buffer.from(`{"pad":"${'x'.repeat(70_000)}","v":${deep(levels)}}`);
    assert.throws(() => decodeJson(body), new RegExp(`deeper than ${MAX_JSON_NESTING} levels`));
  });

  test('decodeJson parses a large body within the bound, and keeps its text', () => {
    const text = JSON.stringify({ pad: 'x'.repeat(70_000), v: JSON.parse(deep(100)) });
    const decoded = decodeJson(Buffer.from(text));
    assert.equal(decoded.text, text);
    assert.equal((decoded.value as { pad: string }).pad.length, 70_000);
  });
});
