// Top-ups: only the next unspent elements of the job's chain, never twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { daemon, mint, refusal } from './packetd-fixtures.js';

test('successive top-ups are credited and STATUS reports the balance', async () => {
  const { d, ask } = await daemon();
  try {
    const m = mint({ units: 10, n: 100 });
    await ask({ type: 'BOOT', token: m.raw });
    const r = await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(80), units: 10 });
    assert.ok(r.type === 'BALANCE', refusal(r));
    assert.deepEqual([r.balance, r.credited, r.spent, r.closed], [20, 20, 0, 0]);
    // Two purchases delivered at once: s_{n-50} proves 30 units past s_{n-20}.
    const r2 = await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(50), units: 30 });
    assert.ok(r2.type === 'BALANCE' && r2.balance === 50);
    assert.equal(d.debit(m.jobId.toString('hex'), 7), 43);
    const s = await ask({ type: 'STATUS', jobId: m.jobId });
    assert.ok(s.type === 'BALANCE');
    assert.deepEqual([s.balance, s.credited, s.spent], [43, 50, 7]);
  } finally { await d.close(); }
});

test('a top-up is never credited twice, and only the next elements are accepted', async () => {
  const { d, ask } = await daemon();
  try {
    const m = mint({ units: 10, n: 100 });
    await ask({ type: 'BOOT', token: m.raw });
    await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(80), units: 10 });
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(80), units: 10 })), 'refused:already-credited');
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(90), units: 10 })), 'refused:already-credited', 'the boot payment itself');
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(85), units: 5 })), 'refused:chain-mismatch', 'an element before the last accepted one');
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(70), units: 11 })), 'refused:chain-mismatch', 'a wrong k');
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: randomBytes(32), units: 1 })), 'refused:chain-mismatch');
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(70), units: 0 })), 'refused:unit-limit');
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(70), units: 2 ** 32 - 1 })), 'refused:unit-limit');
    assert.equal(refusal(await ask({ type: 'TOPUP', jobId: randomBytes(16), element: m.element(70), units: 10 })), 'refused:unknown-job');
    assert.equal(d.job(m.jobId.toString('hex'))?.credited, 20);
  } finally { await d.close(); }
});

test('debit never goes below zero and ignores unknown or closed jobs', async () => {
  const { d, ask } = await daemon();
  try {
    const m = mint({ units: 10 });
    await ask({ type: 'BOOT', token: m.raw });
    const id = m.jobId.toString('hex');
    assert.equal(d.debit(id, 25), 0);
    assert.equal(d.job(id)?.spent, 10);
    assert.equal(d.debit(id, NaN), undefined);
    assert.equal(d.debit('00'.repeat(16), 1), undefined);
    await ask({ type: 'REFUND', jobId: m.jobId });
    assert.equal(d.debit(id, 1), undefined);
  } finally { await d.close(); }
});
