// REFUND closes a job with one signed certificate for its unspent balance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyCertificate } from '../../src/tokens/issue.js';
import { SECRET, charge, daemon, mint, refusal } from '../packetd-fixtures.js';

test('refund signs the unspent balance, stops the VM, frees capacity and closes the job', async () => {
  const { d, ask, stopped, pid } = await daemon();
  try {
    const m = mint({ units: 10, n: 100, memoryMiB: 64 });
    const a = await ask({ type: 'BOOT', token: m.raw });
    assert.ok(a.type === 'ACCEPTED');
    await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(85), units: 5 });
    charge(d, pid(), 4);
    const r = await ask({ type: 'REFUND', jobId: m.jobId });
    assert.ok(r.type === 'CERT', refusal(r));
    const c = verifyCertificate(r.certificate, SECRET);
    assert.ok(c.ok);
    assert.deepEqual([c.value.nodeId, c.value.spent, c.value.unspent], ['node-a', 4, 11]);
    assert.deepEqual(c.value.jobId, m.jobId);
    assert.deepEqual(c.value.last, m.element(85));
    assert.deepEqual(stopped, [a.vmId]);
    assert.equal(d.freeMiB, 1024);
    // Retried REFUND: the same certificate, so the broker can refund it only once.
    const again = await ask({ type: 'REFUND', jobId: m.jobId });
    assert.ok(again.type === 'CERT');
    assert.deepEqual(again.certificate, r.certificate);
    assert.equal(d.freeMiB, 1024);
    assert.equal(
      refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(80), units: 5 })),
      'refused:job-closed',
    );
    const s = await ask({ type: 'STATUS', jobId: m.jobId });
    assert.ok(s.type === 'BALANCE' && s.closed === 1);
  } finally {
    await d.close();
  }
});
