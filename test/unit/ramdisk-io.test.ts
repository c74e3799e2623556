import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { Errno, FileType } from '../../src/guest/errno.js';
import { RamDisk } from '../../src/guest/ramdisk.js';
import { throwsErrno, ramSetup as setup } from '../fs-fixtures.js';

const pattern = (n: number, seed = 1) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 12)) & 255;
  return b;
};
function readAll(fs: RamDisk, h: number | string): Uint8Array {
  const out = new Uint8Array(fs.size(h));
  assert.equal(fs.read(h, 0, out), out.length);
  return out;
}

test('create, write and read back across page boundaries', () => {
  const { fs, root, pool } = setup();
  const h = fs.open(root, 'f', { create: true });
  assert.equal(fs.stat(h).filetype, FileType.REGULAR_FILE);
  assert.equal(fs.write(h, 0, pattern(10)), 10);
  const chunk = pattern(3 * PAGE_SIZE + 5, 2);
  assert.equal(fs.write(h, PAGE_SIZE - 3, chunk), chunk.length);
  assert.equal(fs.size(h), PAGE_SIZE - 3 + chunk.length);
  assert.equal(pool.inUse(), 5);
  const mid = new Uint8Array(chunk.length);
  assert.equal(fs.read(h, PAGE_SIZE - 3, mid), chunk.length);
  assert.deepEqual(mid, chunk);
  const head = new Uint8Array(10);
  fs.read(h, 0, head);
  assert.deepEqual(head, pattern(10));
  // Reads stop at EOF.
  const tail = new Uint8Array(100);
  assert.equal(fs.read(h, fs.size(h) - 4, tail), 4);
  assert.equal(fs.read(h, fs.size(h) + 10, tail), 0);
  // The same file opened again by name sees the data.
  const h2 = fs.open(root, 'f', {});
  assert.equal(h2, h);
  assert.equal(fs.write(h, 0, new Uint8Array(0)), 0);
  throwsErrno(() => fs.read(h, -1, tail), Errno.INVAL);
});

test('large files (> 1 MiB) round trip and use one page per 4 KiB', () => {
  const { fs, root, pool } = setup();
  const h = fs.open(root, 'big', { create: true });
  const data = pattern(3 * 1024 * 1024 + 123, 5);
  // Write in odd-sized chunks, as a program would.
  for (let off = 0; off < data.length; off += 70_001)
    fs.write(h, off, data.subarray(off, off + 70_001));
  assert.equal(fs.size(h), data.length);
  assert.equal(pool.inUse(), Math.ceil(data.length / PAGE_SIZE));
  assert.deepEqual(readAll(fs, h), data);
  assert.equal(fs.stat(h).size, BigInt(data.length));
});

test('sparse files: holes read as zeros and take no pages', () => {
  const { fs, root, pool } = setup();
  const h = fs.open(root, 's', { create: true });
  fs.write(h, 10 * PAGE_SIZE + 7, new Uint8Array([1, 2, 3]));
  assert.equal(fs.size(h), 10 * PAGE_SIZE + 10);
  assert.equal(pool.inUse(), 1);
  const all = readAll(fs, h);
  assert.ok(all.subarray(0, 10 * PAGE_SIZE + 7).every((b) => b === 0));
  assert.deepEqual([...all.subarray(-3)], [1, 2, 3]);
  // Filling part of a hole allocates only that page.
  fs.write(h, 2 * PAGE_SIZE, new Uint8Array([9]));
  assert.equal(pool.inUse(), 2);
  const json = fs.toJSON().inodes.find((i) => i.ino === h)!;
  assert.deepEqual(
    json.pages!.map((p) => p === -1),
    [true, true, false, true, true, true, true, true, true, true, false],
  );
  throwsErrno(() => fs.write(h, 2 ** 40, new Uint8Array(1)), Errno.FBIG);
});

test('truncate shrinks (freeing pages, zeroing the tail) and grows with a hole', () => {
  const { fs, root, pool } = setup();
  const h = fs.open(root, 't', { create: true });
  fs.write(h, 0, pattern(5 * PAGE_SIZE, 3));
  assert.equal(pool.inUse(), 5);
  fs.truncate(h, PAGE_SIZE + 10);
  assert.equal(fs.size(h), PAGE_SIZE + 10);
  assert.equal(pool.inUse(), 2);
  // Growing again must not resurrect the cut bytes.
  fs.truncate(h, 3 * PAGE_SIZE);
  assert.equal(pool.inUse(), 2);
  const all = readAll(fs, h);
  assert.deepEqual(
    all.subarray(0, PAGE_SIZE + 10),
    pattern(5 * PAGE_SIZE, 3).subarray(0, PAGE_SIZE + 10),
  );
  assert.ok(all.subarray(PAGE_SIZE + 10).every((b) => b === 0));
  fs.truncate(h, 0);
  assert.equal(pool.inUse(), 0);
  assert.equal(fs.size(h), 0);
  // open with trunc empties a file; on a directory it is ISDIR.
  fs.write(h, 0, pattern(100));
  fs.open(root, 't', { trunc: true });
  assert.equal(fs.size(h), 0);
  fs.mkdir(root, 'd');
  throwsErrno(() => fs.open(root, 'd', { trunc: true }), Errno.ISDIR);
  throwsErrno(() => fs.truncate(fs.lookup(root, 'd', true), 0), Errno.ISDIR);
});

test('open flags: create/excl/directory, and timestamps from the clock', () => {
  const { fs, root } = setup();
  throwsErrno(() => fs.open(root, 'nope', {}), Errno.NOENT);
  const h = fs.open(root, 'f', { create: true, excl: true });
  throwsErrno(() => fs.open(root, 'f', { create: true, excl: true }), Errno.EXIST);
  assert.equal(fs.open(root, 'f', { create: true }), h);
  throwsErrno(() => fs.open(root, 'f', { directory: true }), Errno.NOTDIR);
  throwsErrno(() => fs.open(root, 'f/', {}), Errno.NOTDIR);
  throwsErrno(() => fs.open(root, 'g/', { create: true }), Errno.ISDIR);
  throwsErrno(() => fs.open(root, 'f/x', { create: true }), Errno.NOTDIR);
  throwsErrno(() => fs.open(root, 'missing/x', { create: true }), Errno.NOENT);
  fs.mkdir(root, 'd');
  const d = fs.open(root, 'd', { directory: true });
  assert.equal(fs.stat(d).filetype, FileType.DIRECTORY);
  throwsErrno(() => fs.read(d, 0, new Uint8Array(1)), Errno.ISDIR);
  throwsErrno(() => fs.write(d, 0, new Uint8Array(1)), Errno.ISDIR);

  const before = fs.stat(h);
  fs.write(h, 0, new Uint8Array([1]));
  const after = fs.stat(h);
  assert.ok(after.mtim > before.mtim && after.ctim > before.ctim);
  fs.setTimes(h, 5n, null);
  assert.equal(fs.stat(h).atim, 5n);
  assert.equal(fs.stat(h).mtim, after.mtim);
  fs.setTimes(h, null, 7n);
  assert.deepEqual([fs.stat(h).atim, fs.stat(h).mtim], [5n, 7n]);
  assert.equal(fs.statPath(root, 'f', true).ino, BigInt(h));
  throwsErrno(() => fs.stat(9999), Errno.BADF);
  throwsErrno(() => fs.stat('f'), Errno.BADF);
});
