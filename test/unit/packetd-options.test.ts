// The daemon's command line (src/host/node-options.ts), read with node:util's
// parseArgs: defaults, units, the two required flags, --no-cgroups, refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeArgs } from '../../src/host/node-options.js';

const base = ['--id', 'n1', '--secret-file', 's'];

test('defaults, and sizes and durations in the CLI forms', () => {
  const o = parseNodeArgs(base);
  assert.deepEqual(
    [o.id, o.secretFile, o.listen, o.capacity, o.state, o.warm, o.grace, o.retention],
    ['n1', 's', '127.0.0.1:7401', 4096, '/tmp/roam-node', 2, 10, 3600],
  );
  assert.deepEqual(
    [o.topupBudget, o.vmOverhead, o.vmReserve, o.price, o.memPrice],
    [40000, 160, 64, 1, 1],
  );
  assert.equal(o.cgroups, undefined, 'cgroups: the daemon decides (on as root)');
  assert.equal(o.netns, undefined);
  assert.equal(o.vmUid, undefined);
  const p = parseNodeArgs([
    ...base,
    '--capacity',
    '8G',
    '--grace',
    '2min',
    '--vm-uid=5000',
    '--netns',
  ]);
  assert.deepEqual([p.capacity, p.grace, p.vmUid, p.netns], [8192, 120, 5000, true]);
  assert.equal(parseNodeArgs([...base, '--no-cgroups']).cgroups, false);
  assert.equal(parseNodeArgs([...base, '--cgroups']).cgroups, true);
});

test('refused: a missing required flag, an unknown flag, a bad number, a stray argument', () => {
  assert.throws(() => parseNodeArgs(['--id', 'n1']), /required option '--secret-file'/);
  assert.throws(() => parseNodeArgs(['--secret-file', 's']), /required option '--id'/);
  assert.throws(() => parseNodeArgs([...base, '--bogus']), /Unknown option '--bogus'/);
  assert.throws(
    () => parseNodeArgs([...base, '--warm', 'two']),
    /'--warm': expected a whole number/,
  );
  assert.throws(() => parseNodeArgs([...base, '--capacity', '4T']), /'--capacity': expected MiB/);
  assert.throws(() => parseNodeArgs([...base, 'extra']), /Unexpected argument 'extra'/);
  assert.throws(() => parseNodeArgs([...base, '--listen']), /argument missing/);
});
