import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint } from '../../src/format/checkpoint.js';
import { sampleCheckpoint, writeSample } from '../../src/format/sample.js';
import { fileTarget, streamTarget } from '../../src/format/target.js';

// Slot 0 only, so the image stays small enough to compare whole (slot 1 starts at 4 GiB).
const s = sampleCheckpoint({ seed: 9, slots: { 0: 10 } });

for (const format of ['stream', 'image'] as const) {
  test(`fileTarget(${format}): abort keeps the old file and removes the partial one`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'roam-tgt-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'vm.ckpt');
    await writeSample(fileTarget(path, { format }), s);
    const good = await readFile(path);
    const ino = (await stat(path)).ino;
    assert.deepEqual(await readdir(dir), ['vm.ckpt']);

    const t2 = fileTarget(path, { format });
    await t2.begin({ ...s.header, vmId: 'newer' }, s.modules);
    await t2.pages(s.rounds[0]);
    assert.ok(t2.bytesWritten > 0);
    assert.deepEqual((await readdir(dir)).sort(), ['vm.ckpt', 'vm.ckpt.partial']);
    assert.deepEqual(await readFile(path), good, 'real file untouched while writing');
    await t2.abort(new Error('ENOSPC (simulated)'));
    assert.deepEqual(await readdir(dir), ['vm.ckpt']);
    assert.deepEqual(await readFile(path), good);
    assert.equal((await stat(path)).ino, ino, 'not replaced');
    assert.equal((await readCheckpoint(path)).header.vmId, s.header.vmId);
    await assert.rejects(t2.pages(s.rounds[1]), /failed|not begun/);
  });

  test(`fileTarget(${format}): finish renames onto the real path`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'roam-tgt-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'vm.ckpt');
    await writeFile(path, 'old contents');
    const tg = fileTarget(path, { format });
    await writeSample(tg, s);
    assert.deepEqual(await readdir(dir), ['vm.ckpt']);
    const cp = await readCheckpoint(path);
    assert.equal(cp.format, format);
    assert.deepEqual(cp.kernel, s.kernel);
    if (format === 'stream') assert.equal(tg.bytesWritten, cp.bytes);
  });

  test(`fileTarget(${format}): file-system errors name the path and the cause, old file intact`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'roam-tgt-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'vm.ckpt');
    await writeFile(path, 'good old checkpoint');
    // A directory where the partial file should go makes open() fail.
    await mkdir(`${path}.partial`);
    await assert.rejects(writeSample(fileTarget(path, { format }), s), (e: Error) => {
      assert.match(e.message, /vm\.ckpt\.partial/);
      assert.match(e.message, /EISDIR/);
      return true;
    });
    assert.equal(await readFile(path, 'utf8'), 'good old checkpoint');
    const missing = join(dir, 'no', 'such', 'dir', 'x.ckpt');
    await assert.rejects(
      writeSample(fileTarget(missing, { format }), s),
      (e: Error) => e.message.includes(missing) && /ENOENT/.test(e.message),
    );
  });
}

test('streamTarget: sink errors propagate; an aborted target refuses more work', async () => {
  let n = 0;
  const tg = streamTarget(() => {
    if (++n === 3) throw new Error('EPIPE: peer went away');
  });
  await tg.begin(s.header, s.modules); // magic+header, module
  await assert.rejects(tg.pages(s.rounds[0]), /EPIPE/);
  await assert.rejects(tg.finish(s.spaces, s.kernel, s.verify), /EPIPE/);

  const chunks: Buffer[] = [];
  const ok = streamTarget((b) => void chunks.push(b));
  await ok.begin(s.header, s.modules);
  await ok.abort(new Error('cancelled by user'));
  await assert.rejects(ok.pages(s.rounds[0]), /aborted: cancelled by user/);
});
