// Issue 13, attack 6 (resources), at the daemon: a VM whose process grows far past
// its token's memory, or whose folder fills past its quota (uploads, files), is
// purged by the meter; each VM holds capacity beyond its token, so a node cannot
// be filled with 1 MiB tokens that each cost a Node process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daemon, mint, refusal } from '../packetd-fixtures.js';

test('memory past token + overhead, or a folder past its quota, ends the VM', async () => {
  const { d, ask, vms, stopped } = await daemon({ vmOverhead: 160, vmReserve: 64 });
  try {
    const a = mint({ memoryMiB: 1 }),
      b = mint({ memoryMiB: 1 });
    for (const m of [a, b])
      assert.equal((await ask({ type: 'BOOT', token: m.raw })).type, 'ACCEPTED');
    assert.equal(d.freeMiB, 1024 - 2 * (1 + 64), 'each VM holds its token and the reserve');
    vms[0].usage = () => ({ cpuS: 0, rssMiB: 461, diskMiB: 1 }); // the 1 MiB token at 461 MiB
    vms[1].usage = () => ({ cpuS: 0, rssMiB: 60, diskMiB: 481 }); // 481 MiB uploaded into its folder
    d.tick(1);
    assert.equal(d.job(a.jobId.toString('hex'))?.state, 'ended');
    assert.equal(d.job(b.jobId.toString('hex'))?.state, 'ended');
    assert.deepEqual(stopped.sort(), ['vm-1', 'vm-2']);
    // Capacity: 1024 MiB hold at most 15 VMs of 1 MiB tokens, not 1024.
    let booted = 0;
    for (let i = 0; i < 20; i++)
      if ((await ask({ type: 'BOOT', token: mint({ memoryMiB: 1 }).raw })).type === 'ACCEPTED')
        booted++;
    assert.equal(booted, Math.floor(1024 / 65));
    assert.equal(
      refusal(await ask({ type: 'BOOT', token: mint({ memoryMiB: 1 }).raw })),
      'refused:no-capacity',
    );
  } finally {
    await d.close();
  }
});
