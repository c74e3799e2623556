// Top-ups: only the next unspent elements of the job's chain, never twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { charge, daemon, mint, refusal } from '../packetd-fixtures.js';

test('successive top-ups are credited and STATUS reports the balance', async () => {
  const { d, ask, pid } = await daemon();
  try {
    const m = mint({ units: 10, n: 100 });
    await ask({ type: 'BOOT', token: m.raw });
    const r = await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(80), units: 10 });
    assert.ok(r.type === 'BALANCE', refusal(r));
    assert.deepEqual([r.balance, r.credited, r.spent, r.closed], [20, 20, 0, 0]);
    // Two purchases delivered at once: s_{n-50} proves 30 units past s_{n-20}.
    const r2 = await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(50), units: 30 });
    assert.ok(r2.type === 'BALANCE' && r2.balance === 50);
    charge(d, pid(), 7);
    const s = await ask({ type: 'STATUS', jobId: m.jobId });
    assert.ok(s.type === 'BALANCE');
    assert.deepEqual([s.balance, s.credited, s.spent], [43, 50, 7]);
  } finally {
    await d.close();
  }
});

test('a top-up is never credited twice, and only the next elements are accepted', async () => {
  const { d, ask } = await daemon();
  try {
    const m = mint({ units: 10, n: 100 });
    await ask({ type: 'BOOT', token: m.raw });
    await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(80), units: 10 });
    assert.equal(
      refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(80), units: 10 })),
      'refused:already-credited',
    );
    assert.equal(
      refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(90), units: 10 })),
      'refused:chain-mismatch',
      'the boot payment itself: behind the last credited element',
    );
    assert.equal(
      refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(85), units: 5 })),
      'refused:chain-mismatch',
      'an element before the last accepted one',
    );
    assert.equal(
      refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(70), units: 11 })),
      'refused:chain-mismatch',
      'a wrong k',
    );
    assert.equal(
      refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: randomBytes(32), units: 1 })),
      'refused:chain-mismatch',
    );
    assert.equal(
      refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(70), units: 0 })),
      'refused:unit-limit',
    );
    assert.equal(
      refusal(
        await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(70), units: 2 ** 32 - 1 }),
      ),
      'refused:unit-limit',
    );
    assert.equal(
      refusal(
        await ask({ type: 'TOPUP', jobId: randomBytes(16), element: m.element(70), units: 10 }),
      ),
      'refused:unknown-job',
    );
    assert.equal(d.job(m.jobId.toString('hex'))?.credited, 20);
  } finally {
    await d.close();
  }
});

test('the meter never debits below zero, and stops debiting a closed job', async () => {
  const { d, ask, pid } = await daemon();
  try {
    const m = mint({ units: 10 });
    await ask({ type: 'BOOT', token: m.raw });
    const id = m.jobId.toString('hex');
    charge(d, pid(), 25);
    assert.equal(d.job(id)?.spent, 10);
    assert.equal(d.job(id)?.state, 'notified', 'told to go when its credit is gone');
    await ask({ type: 'REFUND', jobId: m.jobId });
    charge(d, pid(), 1);
    assert.equal(d.job(id)?.spent, 10);
    assert.equal(d.job(id)?.state, 'ended');
  } finally {
    await d.close();
  }
});
