import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { signCertificate } from '../../src/tokens/certificate.js';
import {
  decodeCertificate,
  decodeTopUp,
  encodeTopUp,
  mintBootToken,
  verifyCertificate,
} from '../../src/tokens/issue.js';
import { verifyBootToken } from '../../src/tokens/boot-token.js';

const SECRET = randomBytes(32);
const fields = {
  nodeId: 'node-a',
  jobId: randomBytes(16),
  spent: 3,
  unspent: 7,
  last: randomBytes(32),
  issued: 1_700_000_000,
};

test('a certificate round-trips and verifies only with the node secret', () => {
  const c = signCertificate(fields, SECRET);
  const v = verifyCertificate(c, SECRET);
  assert.ok(v.ok);
  assert.equal(v.value.spent, 3);
  assert.equal(v.value.unspent, 7);
  assert.deepEqual(v.value.last, fields.last);
  assert.equal(v.value.certId.length, 16);
  assert.deepEqual(verifyCertificate(c, randomBytes(32)), { ok: false, reason: 'forged' });
  const t = Buffer.from(c);
  t[t.length - 40] ^= 1; // the unspent count sits before `last`; anything flipped breaks the MAC
  assert.deepEqual(verifyCertificate(t, SECRET), { ok: false, reason: 'forged' });
  assert.notDeepEqual(
    signCertificate(fields, SECRET).subarray(1, 17),
    c.subarray(1, 17),
    'fresh certificate id',
  );
});

test('certificates and boot tokens are not interchangeable under one secret', () => {
  const c = signCertificate(fields, SECRET);
  assert.equal(verifyBootToken(c, SECRET, 'node-a', 0).ok, false);
  const t = mintBootToken(
    {
      nodeId: 'node-a',
      jobId: randomBytes(16),
      anchor: randomBytes(32),
      payment: randomBytes(32),
      units: 1,
      memoryMiB: 1,
      cpuShare: 1,
      ports: 0,
      lifetimeS: 1,
      loaderSha256: randomBytes(32),
      expiry: 1,
    },
    SECRET,
  );
  assert.equal(verifyCertificate(t, SECRET).ok, false);
});

test('truncated, oversized and garbage certificates and top-ups are refused with a reason', () => {
  const c = signCertificate(fields, SECRET);
  for (let len = 0; len < c.length; len++)
    assert.equal(decodeCertificate(c.subarray(0, len)).ok, false);
  assert.deepEqual(decodeCertificate(Buffer.concat([c, Buffer.alloc(1)])), {
    ok: false,
    reason: 'malformed',
  });
  const topup = encodeTopUp({ jobId: fields.jobId, element: fields.last, units: 5 });
  assert.equal(topup.length, 52);
  assert.deepEqual(decodeTopUp(topup), {
    ok: true,
    value: { jobId: fields.jobId, element: fields.last, units: 5 },
  });
  assert.deepEqual(decodeTopUp(topup.subarray(0, 51)), { ok: false, reason: 'truncated' });
  assert.deepEqual(decodeTopUp(Buffer.concat([topup, Buffer.alloc(1)])), {
    ok: false,
    reason: 'malformed',
  });
  for (let i = 0; i < 2000; i++)
    assert.equal(verifyCertificate(randomBytes(i % 200), SECRET).ok, false);
});
