// Every reason a node refuses a boot token, over a real UDP socket.
import { test } from 'node:test';
import { signedDatagram } from '../../src/host/client.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SECRET, daemon, fakeVm, mint, refusal } from '../packetd-fixtures.js';
import { vmKey } from '../../src/tokens/mac.js';
import { decodeMessage, encodeMessage } from '../../src/host/protocol.js';

const NOW = () => Math.floor(Date.now() / 1000);

test('a valid token is accepted once, credited and launched with its limits', async () => {
  const { d, ask, launches } = await daemon();
  try {
    const m = mint({ units: 12, memoryMiB: 100 });
    const r = await ask({ type: 'BOOT', token: m.raw });
    assert.equal(r.type, 'ACCEPTED');
    assert.ok(r.type === 'ACCEPTED');
    assert.deepEqual(r.jobId, m.jobId);
    assert.equal(r.balance, 12);
    assert.equal(r.addr, '127.0.0.1:9001');
    assert.equal(launches.length, 1);
    assert.equal(r.vmId, 'vm-1');
    assert.deepEqual(
      launches[0].key,
      vmKey(SECRET, m.jobId),
      'the VM gets the job key the broker gives the customer',
    );
    assert.equal(launches[0].memoryMiB, 100);
    assert.equal(launches[0].loaderSha256, '01'.repeat(32));
    assert.equal(d.job(m.jobId.toString('hex'))?.credited, 12);
    assert.equal(d.freeMiB, 1024 - 100);
  } finally {
    await d.close();
  }
});

test('forged, expired, wrong-node and chain-mismatch tokens are refused and start nothing', async () => {
  const { d, ask, launches } = await daemon();
  try {
    assert.equal(
      refusal(await ask({ type: 'BOOT', token: mint({ secret: randomBytes(32) }).raw })),
      'refused:forged',
    );
    assert.equal(
      refusal(await ask({ type: 'BOOT', token: mint({ expiry: NOW() - 1 }).raw })),
      'refused:expired',
    );
    assert.equal(
      refusal(await ask({ type: 'BOOT', token: mint({ nodeId: 'node-b' }).raw })),
      'refused:wrong-node',
    );
    const m = mint({ units: 5 });
    // A payment element one step off: f^5(s_{n-4}) != s_n.
    const off = mint({
      units: 5,
      jobId: m.jobId,
      payment: m.element(m.n - 4),
      anchor: m.element(m.n),
    });
    assert.equal(refusal(await ask({ type: 'BOOT', token: off.raw })), 'refused:chain-mismatch');
    assert.equal(launches.length, 0);
  } finally {
    await d.close();
  }
});

test('a replayed token is refused; a retransmission of the same request gets the same answer', async () => {
  const { d, ask, launches } = await daemon();
  try {
    const m = mint();
    const boot = encodeMessage({ type: 'BOOT', reqId: 42, token: m.raw });
    const from = { address: '10.0.0.1', port: 5 };
    const first = await d.handle(boot, from);
    assert.equal(first?.[0], 0x82, 'ACCEPTED');
    // Same source, same request id: the reply was lost, not the token reused.
    assert.deepEqual(await d.handle(boot, from), first);
    assert.equal(refusal(await ask({ type: 'BOOT', token: m.raw })), 'refused:replayed');
    const other = decodeMessage((await d.handle(boot, { address: '10.0.0.1', port: 6 }))!);
    assert.ok(other.ok && refusal(other.value) === 'refused:replayed');
    assert.equal(launches.length, 1, 'never launched twice');
    assert.equal(d.job(m.jobId.toString('hex'))?.credited, 10, 'never credited twice');
  } finally {
    await d.close();
  }
});

test('without a launcher the daemon verifies and then refuses with no-launcher, recording nothing', async () => {
  const { d, ask } = await daemon({ noLauncher: true });
  try {
    const m = mint();
    assert.equal(refusal(await ask({ type: 'BOOT', token: m.raw })), 'refused:no-launcher');
    assert.equal(
      refusal(await ask({ type: 'BOOT', token: mint({ secret: randomBytes(32) }).raw })),
      'refused:forged',
    );
    assert.equal(d.job(m.jobId.toString('hex')), undefined);
  } finally {
    await d.close();
  }
});

test('capacity, launch failure and a second token for the same job are refused', async () => {
  let fail = true;
  const { d, ask } = await daemon({
    capacity: 100,
    launcher: async () => {
      if (fail) throw new Error('no cstrap');
      return fakeVm('vm-1');
    },
  });
  try {
    assert.equal(
      refusal(await ask({ type: 'BOOT', token: mint({ memoryMiB: 101 }).raw })),
      'refused:no-capacity',
    );
    const m = mint({ memoryMiB: 100 });
    assert.equal(refusal(await ask({ type: 'BOOT', token: m.raw })), 'refused:launch-failed');
    assert.equal(d.freeMiB, 100, 'reservation released');
    fail = false;
    assert.equal(
      (await ask({ type: 'BOOT', token: m.raw })).type,
      'ACCEPTED',
      'the same token works once a launch succeeds',
    );
    assert.equal(
      refusal(await ask({ type: 'BOOT', token: mint({ memoryMiB: 1, jobId: m.jobId }).raw })),
      'refused:job-exists',
    );
  } finally {
    await d.close();
  }
});

test('while a launch is under way a retransmission gets no answer yet, and a refund stops the VM once started', async () => {
  let release!: () => void;
  const stopped: string[] = [];
  const { d } = await daemon({
    launcher: () =>
      new Promise((ok) => {
        release = () => ok(fakeVm('vm-1', 'x:1', { stop: () => stopped.push('vm-1') }));
      }),
  });
  try {
    const m = mint();
    const boot = encodeMessage({ type: 'BOOT', reqId: 7, token: m.raw });
    const from = { address: '10.0.0.2', port: 9 };
    const first = d.handle(boot, from);
    await new Promise((r) => setImmediate(r));
    assert.equal(await d.handle(boot, from), undefined);
    const refund = decodeMessage(
      (await d.handle(
        signedDatagram({ type: 'REFUND', jobId: m.jobId }, 8, vmKey(SECRET, m.jobId)),
        from,
      ))!,
    );
    assert.ok(refund.ok && refund.value.type === 'CERT');
    release();
    assert.equal((await first)?.[0], 0x82);
    assert.equal(stopped.length, 1);
  } finally {
    await d.close();
  }
});
