import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { Errno, WasiError } from '../../src/guest/errno.js';
import { PagePool } from '../../src/guest/page-pool.js';

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

test('alloc hands out zeroed pages in order and counts them', () => {
  const pool = new PagePool();
  assert.equal(pool.slot, 0);
  assert.deepEqual([pool.alloc(), pool.alloc(), pool.alloc()], [0, 1, 2]);
  assert.equal(pool.pageCount(), 3);
  assert.equal(pool.inUse(), 3);
  assert.ok(pool.page(1).every((b) => b === 0));
  assert.equal(pool.page(1).length, PAGE_SIZE);
});

test('write marks the page dirty; read returns the data; zero clears a range', () => {
  const pool = new PagePool();
  const a = pool.alloc();
  const b = pool.alloc();
  assert.deepEqual([...pool.dirtyMap()], [0, 0]);
  pool.write(b, 100, bytes(10, 7), 0, 10);
  assert.deepEqual([...pool.dirtyMap()], [0, 1]);
  const out = new Uint8Array(12);
  pool.read(b, 99, out, 0, 12);
  assert.deepEqual([...out], [0, ...Array(10).fill(7), 0]);
  pool.dirtyMap().fill(0); // what the page cleaner does
  pool.zero(b, 100, 5);
  assert.equal(pool.dirtyMap()[b], 1);
  pool.read(b, 100, out, 0, 10);
  assert.deepEqual([...out.subarray(0, 10)], [0, 0, 0, 0, 0, 7, 7, 7, 7, 7]);
  assert.equal(pool.dirtyMap()[a], 0);
  assert.throws(() => pool.write(a, 4090, bytes(10, 1), 0, 10), RangeError);
  assert.throws(() => pool.read(5, 0, out, 0, 1), RangeError);
});

test('free zeroes and dirties the page, and alloc reuses the lowest free page', () => {
  const pool = new PagePool();
  for (let i = 0; i < 6; i++) pool.alloc();
  pool.write(4, 0, bytes(PAGE_SIZE, 9), 0, PAGE_SIZE);
  pool.dirtyMap().fill(0);
  pool.free(4);
  pool.free(1);
  pool.free(3);
  assert.equal(pool.inUse(), 3);
  assert.equal(pool.dirtyMap()[4], 1);
  assert.ok(pool.isFree(4));
  assert.throws(() => pool.free(4), RangeError, 'double free');
  // The page cleaner copies every page below pageCount(): a free page reads as zeros.
  assert.ok(
    pool.page(4).every((b) => b === 0),
    'a freed page is zero',
  );
  assert.throws(() => pool.read(4, 0, new Uint8Array(1), 0, 1), RangeError, 'use after free');
  assert.deepEqual([pool.alloc(), pool.alloc(), pool.alloc(), pool.alloc()], [1, 3, 4, 6]);
  assert.ok(pool.page(4).every((b) => b === 0));
});

test('growth by doubling keeps contents; page counts and dirty map follow', () => {
  const pool = new PagePool({ initialCapacity: 1 });
  for (let i = 0; i < 300; i++) {
    const p = pool.alloc();
    pool.write(p, 0, new Uint8Array([i & 255, i >> 8]), 0, 2);
  }
  assert.equal(pool.pageCount(), 300);
  assert.equal(pool.dirtyMap().length, 300);
  assert.ok(pool.dirtyMap().every((d) => d === 1));
  for (let i = 0; i < 300; i++)
    assert.deepEqual([...pool.page(i).subarray(0, 2)], [i & 255, i >> 8]);
});

test('limitPages makes alloc fail with NOSPC, and freeing makes room again', () => {
  const pool = new PagePool({ limitPages: 3 });
  pool.alloc();
  pool.alloc();
  pool.alloc();
  assert.throws(
    () => pool.alloc(),
    (e) => e instanceof WasiError && e.errno === Errno.NOSPC,
  );
  pool.free(1);
  assert.equal(pool.available(), 1);
  assert.equal(pool.alloc(), 1);
  // The quota is part of the pool's state, so it survives a checkpoint.
  const copy = PagePool.restore(JSON.parse(JSON.stringify(pool.toJSON())), new Map());
  assert.equal(copy.limitPages, 3);
  assert.throws(
    () => copy.alloc(),
    (e) => e instanceof WasiError && e.errno === Errno.NOSPC,
  );
});

test('toJSON / restore round trip with page data; absent pages are zero', () => {
  const pool = new PagePool({ initialCapacity: 2 });
  for (let i = 0; i < 10; i++) pool.alloc();
  for (const p of [0, 5, 9]) pool.write(p, 17, bytes(100, p + 1), 0, 100);
  pool.write(7, 0, bytes(1, 1), 0, 1);
  pool.free(7);
  pool.free(2);
  const state = JSON.parse(JSON.stringify(pool.toJSON()));
  assert.deepEqual(state, { pages: 10, free: [2, 7] });
  // The cleaner ships only non-zero pages.
  const data = new Map<number, Uint8Array>();
  for (let p = 0; p < pool.pageCount(); p++) {
    if (!pool.isFree(p) && pool.page(p).some((b) => b !== 0)) data.set(p, pool.page(p).slice());
  }
  const copy = PagePool.restore(state, data, { limitPages: 9 });
  assert.equal(copy.pageCount(), 10);
  assert.equal(copy.inUse(), 8);
  assert.ok(
    copy.dirtyMap().every((d) => d === 0),
    'restored pages equal the checkpoint',
  );
  for (let p = 0; p < 10; p++) {
    if (copy.isFree(p)) continue;
    assert.deepEqual(copy.page(p), pool.page(p));
  }
  assert.equal(copy.alloc(), 2);
  assert.throws(
    () => copy.alloc(),
    (e) => e instanceof WasiError && e.errno === Errno.NOSPC,
  );
  assert.throws(() => PagePool.restore({ pages: 2, free: [3] }, new Map()), RangeError);
});
