import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { Errno, WasiError } from '../../src/guest/errno.js';
import { PagePool } from '../../src/guest/page-pool.js';
import { RamDisk } from '../../src/guest/ramdisk.js';

test('writes past the pool limit are short, then NOSPC; freeing space makes room', () => {
  let t = 0n;
  const pool = new PagePool({ limitPages: 4, initialCapacity: 1 });
  const fs = new RamDisk(pool, () => ++t);
  const a = fs.open(fs.root(), 'a', { create: true });
  // 5 pages requested, 4 fit: a short write, as POSIX does when the disk fills.
  assert.equal(fs.write(a, 0, new Uint8Array(5 * PAGE_SIZE).fill(1)), 4 * PAGE_SIZE);
  assert.equal(fs.size(a), 4 * PAGE_SIZE);
  const b = fs.open(fs.root(), 'b', { create: true });
  assert.throws(
    () => fs.write(b, 0, new Uint8Array(1)),
    (e) => e instanceof WasiError && e.errno === Errno.NOSPC,
  );
  assert.equal(fs.size(b), 0);
  // A sparse write far out must not leave a page list of holes behind on failure.
  assert.throws(
    () => fs.write(b, 100 * PAGE_SIZE, new Uint8Array(1)),
    (e) => e instanceof WasiError && e.errno === Errno.NOSPC,
  );
  assert.equal(fs.toJSON().inodes.find((i) => i.ino === b)!.pages!.length, 0);
  // Rewriting allocated pages needs no space.
  assert.equal(fs.write(a, 10, new Uint8Array(100).fill(2)), 100);
  fs.unlink(fs.root(), 'a');
  fs.close(a); // last reference: pages go back to the pool
  assert.equal(pool.inUse(), 0);
  assert.equal(fs.write(b, 0, new Uint8Array(PAGE_SIZE)), PAGE_SIZE);
});
