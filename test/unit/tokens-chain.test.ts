import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MAX_UNITS, f, iterate, verifyElement } from '../../src/tokens/chain.js';
import { newSeed } from '../../src/tokens/issue.js';

test('f is SHA-256 and iterate composes it', () => {
  const s0 = newSeed();
  assert.deepEqual(f(s0), createHash('sha256').update(s0).digest());
  assert.deepEqual(iterate(s0, 3), f(f(f(s0))));
  assert.deepEqual(iterate(s0, 0), s0);
});

test('element s_{n-k} proves k units against s_n, and successive payments chain', () => {
  const s0 = newSeed(),
    n = 50,
    sn = iterate(s0, n);
  const p1 = iterate(s0, n - 10);
  assert.ok(verifyElement(p1, 10, sn));
  assert.ok(!verifyElement(p1, 9, sn), 'wrong k');
  assert.ok(!verifyElement(p1, 11, sn), 'wrong k');
  const p2 = iterate(s0, n - 25);
  assert.ok(verifyElement(p2, 15, p1), 'a top-up verifies against the last accepted element');
  assert.ok(!verifyElement(p2, 25, p1));
  assert.ok(
    !verifyElement(p1, 15, p2),
    'an element later in the chain never verifies against an earlier one',
  );
});

test('verifyElement refuses out-of-range k and malformed elements without hashing forever', () => {
  const s0 = newSeed(),
    sn = iterate(s0, 2);
  for (const k of [0, -1, 1.5, NaN, MAX_UNITS + 1, 2 ** 32])
    assert.equal(verifyElement(s0, k, sn), false, String(k));
  assert.equal(verifyElement(s0.subarray(0, 31), 2, sn), false);
  assert.equal(verifyElement(s0, 2, Buffer.alloc(0)), false);
});
