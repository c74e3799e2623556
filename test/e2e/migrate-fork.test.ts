// Network forks: both copies run on, the child with a new VM id; and the
// hypercube fork of thesis Figure 8.11, driven from inside the VM by its program.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { example, roam, start, until } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';

test('roam fork: parent and child both finish the program; the child has a new id', async () => {
  const args = ['80', '40']; // long enough to be still running once forked on a loaded machine
  const reference = await roam(['run', '--quiet', example('counter'), ...args]);
  assert.equal(reference.code, 0, reference.stderr);
  const dst = await cstrap();
  const vm = start(['run', example('counter'), ...args]);
  const id = await vm.vmId;
  await until(() => vm.stdout().length >= reference.stdout.length / 3, 'progress');
  const f = await roam(['fork', id, '--to', dst.addr, '--json']);
  assert.equal(f.code, 0, f.stderr);
  const res = JSON.parse(f.stdout);
  assert.equal(res.kind, 'fork');
  assert.notEqual(res.vmId, id, 'the child gets a new VM identity');
  assert.equal(await vm.exited, 0, vm.stderr());
  assert.equal(await dst.exited, 0, dst.stderr());
  assert.equal(vm.stdout(), reference.stdout, 'the parent runs on undisturbed');
  assert.ok(
    dst.stdout().length > 0 && reference.stdout.endsWith(dst.stdout()),
    'the child continues from the fork point',
  );
  assert.match(dst.stderr(), new RegExp(`roam: vm ${res.vmId} arrived .*fork of vm ${id}`));
});

test('hypercube fork to 8 VMs in 3 rounds, from inside the VM through /dev/checkpoint', async () => {
  const dsts = await Promise.all(Array.from({ length: 7 }, () => cstrap()));
  const vm = start(['run', example('hypercube'), ...dsts.map((d) => d.addr)]);
  assert.equal(await vm.exited, 0, vm.stderr());
  const codes = await Promise.all(dsts.map((d) => d.exited));
  assert.deepEqual(
    codes,
    dsts.map(() => 0),
    dsts.map((d) => d.stderr()).join('\n'),
  );
  const lines = [vm.stdout(), ...dsts.map((d) => d.stdout())].join('').trim().split('\n').sort();
  assert.deepEqual(
    lines,
    Array.from({ length: 8 }, (_, i) => `copy ${i} of 8: checksum 3d7bddd9`).sort(),
  );
  // Round r: copies 0..2^r-1 fork; the original forks once per round.
  assert.equal((vm.stderr().match(/forking to/g) ?? []).length, 3);
});

test('a fork from inside to an address where nothing listens fails with EIO and the program goes on', async () => {
  const vm = start(['run', example('hypercube'), '127.0.0.1:1']);
  assert.equal(await vm.exited, 1);
  assert.match(vm.stderr(), /fork to 127\.0\.0\.1:1 failed/);
  assert.match(vm.stderr(), /cannot reach 127\.0\.0\.1:1/);
});
