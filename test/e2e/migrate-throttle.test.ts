// A guest that dirties memory faster than the link carries it: pre-copy alone does
// not converge. With throttling (the default) the migration converges by slowing
// and then pausing it (thesis Figure 6.6); without, it aborts with a clear error
// and the source runs on. Either way the output is what an unmigrated run prints.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { example, roam, start, until } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';

const ARGS = ['8', '3000'];
let reference = '';

async function running() {
  if (!reference) {
    const r = await roam(['run', '--quiet', example('dirtier'), ...ARGS]);
    assert.equal(r.code, 0, r.stderr);
    reference = r.stdout;
  }
  const vm = start(['run', example('dirtier'), ...ARGS]);
  const id = await vm.vmId;
  await until(() => vm.stdout().length > reference.length / 10, 'progress');
  return { vm, id };
}

test('dirtier over a slow link converges by throttling and prints the unmigrated output', async () => {
  const dst = await cstrap();
  const { vm, id } = await running();
  const m = await roam([
    'migrate',
    id,
    '--to',
    dst.addr,
    '--max-bandwidth',
    '80Mbit',
    '--compress',
    'never',
    '--json',
  ]);
  assert.equal(m.code, 0, m.stderr);
  const res = JSON.parse(m.stdout);
  const throttled = res.rounds.filter(
    (r: { throttled: Record<string, string> }) => Object.keys(r.throttled).length > 0,
  );
  assert.ok(
    throttled.length > 0,
    `some round throttled the guest: ${JSON.stringify(res.rounds.map((r: { wss: number }) => r.wss))}`,
  );
  const last = res.rounds[res.rounds.length - 1];
  assert.ok(last.wss <= last.buffer, 'the final WSS fit in the snapshot buffer');
  assert.equal(await vm.exited, 0, vm.stderr());
  assert.equal(await dst.exited, 0, dst.stderr());
  assert.equal(vm.stdout() + dst.stdout(), reference);
});

test('dirtier with --no-throttle: the migration aborts with a clear error, the source runs on', async () => {
  const dst = await cstrap();
  const { vm, id } = await running();
  const m = await roam([
    'migrate',
    id,
    '--to',
    dst.addr,
    '--max-bandwidth',
    '80Mbit',
    '--compress',
    'never',
    '--no-throttle',
    '--max-rounds',
    '6',
  ]);
  assert.notEqual(m.code, 0);
  assert.match(
    m.stderr,
    /writable working set \(\d+ pages\) does not fit the snapshot-buffer limit/,
  );
  assert.match(m.stderr, /runs on here/);
  assert.equal(await vm.exited, 0, vm.stderr());
  assert.equal(vm.stdout(), reference);
  dst.proc.kill();
});
