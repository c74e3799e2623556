// `roam run --detach` prints the VM id once the VM runs and leaves it running in
// the background; `roam logs` prints its output, while it runs and after it ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { example, roam, tmpdir } from '../helpers.js';

test('run --detach: the id on stdout, the VM in roam ps, its output in roam logs --follow', async () => {
  const r = await roam(['run', '--detach', example('counter'), '20', '20']);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{12}$/);
  const f = await roam(['logs', '--follow', id]);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, /tick 0\n[\s\S]*tick 19\nsum \d+\n/);
  // After the VM has ended, its log is still there.
  const again = await roam(['logs', id.slice(0, 6)]);
  assert.equal(again.stdout, f.stdout);
  // --json: the same lines, one object each.
  const j = await roam(['logs', '--json', id]);
  const lines = j.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { vm: string; line: string });
  assert.equal(lines.map((l) => `${l.line}\n`).join(''), f.stdout);
  assert.ok(lines.every((l) => l.vm === id));
});

test('run --detach of a program that cannot start: its error, and its exit status', async () => {
  const r = await roam(['run', '--detach', '/nonexistent/prog.wasm']);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /the VM ended before it ran[\s\S]*cannot read program \/nonexistent\/prog\.wasm/,
  );
  assert.equal(r.stdout, '');
});

test('a detached VM can be checkpointed and stopped by its id; a device is never written over', async () => {
  const r = await roam(['run', '--detach', example('counter'), '100000', '20']);
  const id = r.stdout.trim();
  const out = path.join(tmpdir('detach'), 'vm.ckpt');
  const c = await roam(['checkpoint', id, '-o', out, '--json']);
  assert.equal(c.code, 0, c.stderr);
  assert.ok(fs.statSync(out).size > 0);
  // Written aside and renamed, a checkpoint "to /dev/null" once replaced the device itself (as root).
  const d = await roam(['checkpoint', id, '-o', '/dev/null']);
  assert.equal(d.code, 3, d.stderr);
  assert.match(d.stderr, /\/dev\/null is not a regular file.*\[not-a-file\]/);
  assert.ok(fs.statSync('/dev/null').isCharacterDevice(), '/dev/null is still the device');
  assert.equal((await roam(['stop', id])).code, 0);
});
