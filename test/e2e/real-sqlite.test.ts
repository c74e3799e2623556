// SQLite (the amalgamation better-sqlite3 ships, built for wasm32-wasi by
// scripts/build-guests.sh with our own driver test/guests/sqlite-speed.c) as a
// roam guest: it prints what node:wasi prints for the same module, and a run
// checkpointed or migrated live inside its long transaction finishes with the
// same output and `PRAGMA integrity_check` ok.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { readCheckpoint, defaultKeyPath, loadKey } from '../../src/format/index.js';
import { HOME, roam, start, tmpdir, until } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';
import { guest, nodeWasi } from '../real-guests.js';

const sqlite = guest('sqlite-speed');
const skip = sqlite.path ? false : `SQLite guest not built: ${sqlite.why}`;
// A file database on the VM's RAM disk, so the transaction has a rollback journal open;
// 100 ms after each of its 20 stages, so that a checkpoint or a migration begun at
// stage 2 freezes it inside the transaction whatever the machine's speed (without
// the pause the whole transaction took less than a live migration of the VM).
const ARGS = ['/speed.db', '4', '100'];

let reference: string | undefined;
/** What node:wasi prints for the same module and arguments (computed once). */
function expected(): string {
  if (reference !== undefined) return reference;
  const r = nodeWasi(sqlite.path!, ARGS, tmpdir('sqlite-ref'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^integrity_check: ok$/m);
  assert.match(r.stdout, /^done$/m);
  return (reference = r.stdout);
}

/** Inside the transaction: it has begun and not committed in `out`. */
const inTransaction = (out: string) => out.includes('txn begin') && !out.includes('txn commit');

test('sqlite-speed under roam run prints what node:wasi prints', { skip }, async () => {
  const r = await roam(['run', '--quiet', sqlite.path!, ...ARGS]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, expected());
});

test(
  'sqlite-speed checkpointed inside its transaction restores and finishes the same',
  { skip },
  async () => {
    const want = expected();
    const dir = tmpdir('sqlite-ck');
    const vm = start(['run', sqlite.path!, ...ARGS]);
    const id = await vm.vmId;
    await until(
      () => vm.stdout().includes('txn stage  2/20'),
      'the transaction under way',
      300_000,
    );
    const file = path.join(dir, 'in-txn.ckpt');
    const r = await roam(['checkpoint', id, '-o', file, '--verify']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await vm.exited, 0, vm.stderr());
    assert.equal(vm.stdout(), want, 'a checkpoint must not disturb the running VM');

    const cp = await readCheckpoint(file, {
      key: await loadKey(defaultKeyPath({ ROAM_HOME: HOME })),
    });
    const at = (JSON.parse(cp.kernel.toString()) as { stdoutBytes: number }).stdoutBytes;
    assert.ok(
      inTransaction(want.slice(0, at)),
      `frozen inside the transaction: ${want.slice(0, at)}`,
    );
    const restored = await roam(['restore', '--quiet', file]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(restored.stdout, want.slice(at));
    assert.match(restored.stdout, /^integrity_check: ok$/m);
  },
);

test('sqlite-speed migrated live inside its transaction finishes the same', { skip }, async () => {
  const want = expected();
  const dst = await cstrap();
  const vm = start(['run', sqlite.path!, ...ARGS]);
  const id = await vm.vmId;
  await until(() => vm.stdout().includes('txn stage  2/20'), 'the transaction under way', 300_000);
  const m = await roam(['migrate', id, '--to', dst.addr, '--verify', '--json']);
  assert.equal(m.code, 0, m.stderr);
  assert.equal((JSON.parse(m.stdout) as { kind: string }).kind, 'migration');
  assert.equal(await vm.exited, 0, vm.stderr());
  assert.equal(await dst.exited, 0, dst.stderr());
  assert.ok(inTransaction(vm.stdout()), `frozen inside the transaction: ${vm.stdout()}`);
  assert.equal(vm.stdout() + dst.stdout(), want, 'source output, then destination output');
  assert.match(dst.stdout(), /^integrity_check: ok$/m);
});
