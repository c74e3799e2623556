import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeBootToken, verifyBootToken } from '../../src/tokens/boot-token.js';
import { SECRET, mint } from '../packetd-fixtures.js';

const NOW = Math.floor(Date.now() / 1000);

test('a minted token round-trips every field and verifies', () => {
  const m = mint({
    units: 7,
    memoryMiB: 300,
    cpuShare: 250,
    ports: 3,
    lifetimeS: 99,
    expiry: NOW + 5,
  });
  const v = verifyBootToken(m.raw, SECRET, 'node-a', NOW);
  assert.ok(v.ok);
  const t = v.value;
  assert.equal(t.version, 1);
  assert.equal(t.nodeId, 'node-a');
  assert.deepEqual(t.jobId, m.jobId);
  assert.deepEqual(t.anchor, m.element(m.n));
  assert.deepEqual(t.payment, m.element(m.n - 7));
  assert.deepEqual(
    [t.units, t.memoryMiB, t.cpuShare, t.ports, t.lifetimeS, t.expiry],
    [7, 300, 250, 3, 99, NOW + 5],
  );
  assert.deepEqual(t.loaderSha256, Buffer.alloc(32, 1));
  assert.equal(t.nonce.length, 16);
  assert.notDeepEqual(
    mint().raw.subarray(-48, -32),
    mint().raw.subarray(-48, -32),
    'fresh nonce per token',
  );
});

test('each stateless refusal has its reason', () => {
  const cases: Array<[string, Buffer, string]> = [
    ['forged', mint({ secret: Buffer.alloc(32, 8) }).raw, 'forged'],
    ['expired', mint({ expiry: NOW }).raw, 'expired'],
    ['wrong node', mint({ nodeId: 'node-b' }).raw, 'wrong-node'],
    ['chain mismatch', mint({ units: 9, payment: randomBytes(32) }).raw, 'chain-mismatch'],
    ['too many units', mint({ units: 20_000, n: 20_001 }).raw, 'unit-limit'],
  ];
  for (const [what, raw, reason] of cases) {
    const v = verifyBootToken(raw, SECRET, 'node-a', NOW);
    assert.deepEqual(v, { ok: false, reason }, what);
  }
  const flipped = Buffer.from(mint().raw);
  flipped[40] ^= 1; // inside the anchor: the MAC no longer matches
  assert.deepEqual(verifyBootToken(flipped, SECRET, 'node-a', NOW), {
    ok: false,
    reason: 'forged',
  });
});

test('every truncation, extension and garbage input is refused with a reason, never thrown', () => {
  const raw = mint().raw;
  for (let len = 0; len < raw.length; len++) {
    const r = decodeBootToken(raw.subarray(0, len));
    assert.ok(!r.ok && ['truncated', 'bad-version'].includes(r.reason), `prefix ${len}`);
  }
  for (const extra of [1, 7, 1000]) {
    const r = decodeBootToken(Buffer.concat([raw, Buffer.alloc(extra)]));
    assert.deepEqual(r, { ok: false, reason: 'malformed' });
  }
  assert.deepEqual(decodeBootToken(Buffer.from([2, ...raw.subarray(1)])), {
    ok: false,
    reason: 'bad-version',
  });
  const badName = Buffer.from(raw);
  badName[2] = 0x20; // a space in the node id
  assert.deepEqual(decodeBootToken(badName), { ok: false, reason: 'malformed' });
  for (let i = 0; i < 5000; i++) {
    const junk = randomBytes(Math.floor(Math.random() * 400));
    if (i % 2) junk[0] = 1;
    const r = verifyBootToken(junk, SECRET, 'node-a', NOW);
    assert.equal(r.ok, false);
  }
});
