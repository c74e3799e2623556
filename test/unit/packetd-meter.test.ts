// The meter and a job's life on the node: debits from measured use, notice at
// zero credit or end of lifetime, purge after the grace, suspension, retention,
// revival by top-up, memory ceiling, eviction. The daemon's clock is the test's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { charge, cpu, daemon, mint, rss } from '../packetd-fixtures.js';

const settle = () => new Promise((r) => setImmediate(r));

async function booted(o: Parameters<typeof daemon>[0] = {}, units = 10) {
  let clock = Math.floor(Date.now() / 1000);
  const t = await daemon({ grace: 5, retention: 60, now: () => clock, ...o });
  const m = mint({ units, n: 200, lifetimeS: 3600 });
  const a = await t.ask({ type: 'BOOT', token: m.raw });
  assert.equal(a.type, 'ACCEPTED');
  return {
    ...t,
    m,
    id: m.jobId.toString('hex'),
    advance: (s: number) => {
      clock += s;
      t.d.tick(1);
    },
  };
}

test('the meter debits CPU seconds and resident memory at their prices, in whole units', async () => {
  const { d, pid, id } = await booted({ price: 3, memPrice: 2 }, 100);
  try {
    cpu.set(pid(), 2.5);
    rss.set(pid(), 512);
    d.tick(1); // 2.5 s x 3 + 0.5 GiB x 1 s x 2 = 8.5
    assert.equal(d.job(id)?.spent, 8);
    d.tick(1); // no more CPU; memory + 1 with the half unit carried: 1.5
    assert.equal(d.job(id)?.spent, 9);
    rss.set(pid(), 1024);
    d.tick(1); // 0.5 carried + 2
    assert.equal(d.job(id)?.spent, 11);
  } finally {
    await d.close();
  }
});

test('at zero credit the VM gets a notice, and is purged when the grace ends without it leaving', async () => {
  const { d, pid, id, vms, stopped, advance } = await booted();
  try {
    charge(d, pid(), 10);
    assert.deepEqual(vms[0].notices, ['notice balance 5']);
    assert.equal(d.job(id)?.state, 'notified');
    advance(4);
    assert.equal(d.job(id)?.state, 'notified', 'still within the grace');
    advance(1);
    assert.equal(d.job(id)?.state, 'ended');
    assert.deepEqual(stopped, ['vm-1']);
    assert.equal(d.freeMiB, 1024, 'its memory is free again');
  } finally {
    await d.close();
  }
});

test('a VM that suspends itself is kept for the retention period, revived by a top-up, and purged if none comes', async () => {
  const { d, ask, pid, id, m, vms, launches, stopped, advance } = await booted();
  try {
    charge(d, pid(), 10);
    vms[0].suspend = true;
    vms[0].exit();
    await settle();
    assert.equal(d.job(id)?.state, 'suspended');
    assert.equal(d.freeMiB, 1024, 'a suspended VM holds no memory');
    const top = await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(180), units: 10 });
    assert.ok(top.type === 'BALANCE' && top.balance === 10);
    await settle();
    assert.equal(launches[1].revive, 'vm-1', 'revived in its own folder');
    assert.equal(d.job(id)?.state, 'running');
    assert.equal(d.freeMiB, 1024 - 64);

    // Runs out again, suspends again, and this time nobody tops it up.
    charge(d, pid(1), 10);
    vms[1].suspend = true;
    vms[1].exit();
    await settle();
    assert.equal(d.job(id)?.state, 'suspended');
    advance(59);
    assert.equal(d.job(id)?.state, 'suspended');
    advance(1);
    assert.equal(d.job(id)?.state, 'ended', 'retention over: purged');
    assert.deepEqual(stopped, ['vm-1']);
  } finally {
    await d.close();
  }
});

test('topped up during its grace, a VM that suspends is revived at once', async () => {
  const { d, ask, pid, id, m, vms, launches } = await booted();
  try {
    charge(d, pid(), 10);
    await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(180), units: 10 });
    vms[0].suspend = true;
    vms[0].exit();
    await settle();
    await settle();
    assert.equal(launches.length, 2);
    assert.equal(d.job(id)?.state, 'running');
  } finally {
    await d.close();
  }
});

test('a VM that exits by itself without suspending is purged', async () => {
  const { d, id, vms, stopped } = await booted();
  try {
    vms[0].exit();
    await settle();
    assert.equal(d.job(id)?.state, 'ended');
    assert.deepEqual(stopped, ['vm-1']);
  } finally {
    await d.close();
  }
});

test('a VM over its memory limit is purged at once; one at the end of its lifetime gets a notice', async () => {
  const a = await booted();
  try {
    rss.set(a.pid(), 64 + 513);
    a.d.tick(1);
    assert.equal(a.d.job(a.id)?.state, 'ended');
    assert.deepEqual(a.stopped, ['vm-1']);
  } finally {
    await a.d.close();
  }
  const b = await booted();
  try {
    b.advance(3600);
    assert.deepEqual(b.vms[0].notices, ['notice lifetime 5']);
    b.vms[0].suspend = true;
    b.vms[0].exit();
    await settle();
    await b.ask({ type: 'TOPUP', jobId: b.m.jobId, element: b.m.element(180), units: 10 });
    await settle();
    assert.equal(
      b.launches.length,
      1,
      'a VM past its lifetime is not revived, whatever its credit',
    );
    assert.equal(b.d.job(b.id)?.state, 'suspended');
  } finally {
    await b.d.close();
  }
});

test('eviction tells every running VM to go with the given grace; the daemon is busy until they have', async () => {
  const { d, id, vms, advance } = await booted();
  try {
    assert.equal(d.evict(2), 1);
    assert.deepEqual(vms[0].notices, ['notice evict 2']);
    assert.equal(d.busy(), true);
    advance(2);
    assert.equal(d.job(id)?.state, 'ended');
    assert.equal(d.busy(), false);
  } finally {
    await d.close();
  }
});
