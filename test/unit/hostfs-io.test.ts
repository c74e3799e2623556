import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as path from 'node:path';
import { Errno, FileType } from '../../src/guest/errno.js';
import { HostFs } from '../../src/guest/hostfs.js';
import { throwsErrno, hostSetup as setup } from '../fs-fixtures.js';

test('create, write at positions, read back, stat', (t) => {
  const { dir, fs, root } = setup(t);
  const h = fs.open(root, 'f', { create: true, excl: true });
  assert.equal(h, 'f');
  assert.equal(fs.write(h, 0, Buffer.from('hello world')), 11);
  assert.equal(fs.write(h, 6, Buffer.from('WORLD!')), 6);
  assert.equal(nfs.readFileSync(path.join(dir, 'f'), 'utf8'), 'hello WORLD!');
  const b = new Uint8Array(5);
  assert.equal(fs.read(h, 6, b), 5);
  assert.equal(Buffer.from(b).toString(), 'WORLD');
  assert.equal(fs.read(h, 100, b), 0);
  const st = fs.stat(h);
  assert.equal(st.filetype, FileType.REGULAR_FILE);
  assert.equal(st.size, 12n);
  assert.equal(st.ino, nfs.statSync(path.join(dir, 'f'), { bigint: true }).ino);
  assert.equal(fs.size(h), 12);
  assert.equal(fs.statPath(root, '.', true).filetype, FileType.DIRECTORY);
  fs.close(h);
  throwsErrno(() => fs.open(root, 'f', { create: true, excl: true }), Errno.EXIST);
  throwsErrno(() => fs.open(root, 'nope', {}), Errno.NOENT);
  throwsErrno(() => fs.open(root, 'f', { directory: true }), Errno.NOTDIR);
  throwsErrno(() => fs.open(root, 'f/', {}), Errno.NOTDIR);
  throwsErrno(() => fs.open(root, 'f/x', { create: true }), Errno.NOTDIR);
  nfs.mkdirSync(path.join(dir, 'd'));
  throwsErrno(() => fs.open(root, 'd', { trunc: true }), Errno.ISDIR);
  const d = fs.open(root, 'd', { directory: true });
  throwsErrno(() => fs.read(d, 0, b), Errno.ISDIR);
  throwsErrno(() => fs.write(d, 0, b), Errno.ISDIR);
  assert.equal(fs.open(d, 'inner', { create: true }), 'd/inner');
});

test('large file (> 1 MiB) and sparse writes', (t) => {
  const { fs, root } = setup(t);
  const h = fs.open(root, 'big', { create: true });
  const data = Buffer.alloc(1_300_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 255;
  for (let off = 0; off < data.length; off += 65_537)
    fs.write(h, off, data.subarray(off, off + 65_537));
  const back = new Uint8Array(data.length);
  assert.equal(fs.read(h, 0, back), data.length);
  assert.deepEqual(Buffer.from(back), data);
  const s = fs.open(root, 'sparse', { create: true });
  fs.write(s, 100_000, Buffer.from('x'));
  const z = new Uint8Array(100_001);
  fs.read(s, 0, z);
  assert.ok(z.subarray(0, 100_000).every((v) => v === 0));
  assert.equal(z[100_000], 0x78);
});

test('truncate and trunc-on-open; setTimes', (t) => {
  const { dir, fs, root } = setup(t);
  const h = fs.open(root, 't', { create: true });
  fs.write(h, 0, Buffer.alloc(10_000, 1));
  fs.truncate(h, 10);
  assert.equal(fs.size(h), 10);
  fs.truncate(h, 20);
  const b = new Uint8Array(20);
  fs.read(h, 0, b);
  assert.deepEqual([...b], [...Array(10).fill(1), ...Array(10).fill(0)]);
  fs.open(root, 't', { trunc: true });
  assert.equal(nfs.statSync(path.join(dir, 't')).size, 0);
  fs.setTimes(h, 1_000_000_000_000n, null);
  const st = fs.stat(h);
  assert.equal(st.atim, 1_000_000_000_000n);
  fs.setTimes(h, null, 2_500_000_000_000n);
  assert.equal(fs.stat(h).mtim, 2_500_000_000_000n);
  assert.equal(fs.stat(h).atim, 1_000_000_000_000n);
});

test('handles survive a "restore": a new HostFs reopens files by path on demand', (t) => {
  const { dir, fs, root } = setup(t);
  fs.mkdir(root, 'sub');
  const h = fs.open(root, 'sub/data', { create: true });
  fs.write(h, 0, Buffer.from('before'));
  const saved = JSON.parse(JSON.stringify({ h }));
  fs.closeAll();
  const fs2 = new HostFs(dir);
  t.after(() => fs2.closeAll());
  assert.equal(fs2.write(saved.h, 6, Buffer.from('+after')), 6);
  const b = new Uint8Array(12);
  assert.equal(fs2.read(saved.h, 0, b), 12);
  assert.equal(Buffer.from(b).toString(), 'before+after');
  fs2.close(saved.h); // never opened by fs2: harmless
  throwsErrno(() => fs2.read(42, 0, b), Errno.BADF);
});

test('host errors map to WASI errnos', (t) => {
  const { dir, fs, root } = setup(t);
  const h = fs.open(root, 'ro', { create: true });
  fs.write(h, 0, Buffer.from('x'));
  fs.closeAll();
  nfs.chmodSync(path.join(dir, 'ro'), 0o444);
  // Read-only host files can still be read; writing them is ACCES (unless root).
  const r = fs.open(root, 'ro', {});
  const b = new Uint8Array(1);
  assert.equal(fs.read(r, 0, b), 1);
  if (process.getuid?.() !== 0) throwsErrno(() => fs.write(r, 0, b), Errno.ACCES);
  throwsErrno(() => fs.read(r, -1, b), Errno.INVAL);
});
