import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { FileType } from '../../src/guest/errno.js';
import { PagePool } from '../../src/guest/page-pool.js';
import { RamDisk } from '../../src/guest/ramdisk.js';

type Node = { path: string; stat: unknown; data?: string; target?: string };

/** Everything observable about a tree, for comparing images. */
function snapshot(fs: RamDisk): Node[] {
  const out: Node[] = [];
  const walk = (dir: number | string, prefix: string) => {
    for (const e of fs.readdir(dir).slice(2)) {
      const p = prefix + e.name;
      const h = fs.lookup(dir, e.name, false);
      const node: Node = { path: p, stat: fs.stat(h) };
      if (e.filetype === FileType.REGULAR_FILE) {
        const b = new Uint8Array(fs.size(h));
        fs.read(h, 0, b);
        node.data = Buffer.from(b).toString('base64');
      } else if (e.filetype === FileType.SYMBOLIC_LINK) {
        node.target = fs.readlink(dir, e.name);
      } else {
        walk(h, p + '/');
      }
      out.push(node);
    }
  };
  walk(fs.root(), '');
  // Reading updates atim; take stats once more so both sides are compared after reads.
  return out.map((n) => ({ ...n, stat: fs.statPath(fs.root(), n.path, false) }));
}

test('serialise -> restore into a new pool gives identical contents and metadata', () => {
  let t = 1_700_000_000_000_000_000n;
  const clock = () => (t += 1_000n);
  const pool = new PagePool({ initialCapacity: 1 });
  const fs = new RamDisk(pool, clock, { dev: 42n });
  const root = fs.root();
  fs.mkdir(root, 'etc');
  fs.mkdir(root, 'var');
  fs.mkdir(root, 'var/log');
  const big = new Uint8Array(1_500_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
  const hb = fs.open(root, 'var/log/big', { create: true });
  fs.write(hb, 0, big);
  const hs = fs.open(root, 'sparse', { create: true });
  fs.write(hs, 50 * PAGE_SIZE, new TextEncoder().encode('tail'));
  fs.close(hs);
  const hc = fs.open(root, 'etc/conf', { create: true });
  fs.write(hc, 0, new TextEncoder().encode('key=value\n'));
  fs.close(hc);
  fs.link(root, 'etc/conf', root, 'conf.hard');
  fs.symlink('etc/conf', root, 'conf.sym');
  fs.symlink('nowhere', root, 'dangling');
  fs.setTimes(fs.lookup(root, 'etc', true), 123n, 456n);
  // An unlinked-but-open file is part of the image too.
  const ho = fs.open(root, 'orphan', { create: true });
  fs.write(ho, 0, new Uint8Array([1, 2, 3]));
  fs.unlink(root, 'orphan');
  // Free a few pages so the free list is non-trivial.
  const ht = fs.open(root, 'tmp', { create: true });
  fs.write(ht, 0, new Uint8Array(3 * PAGE_SIZE).fill(9));
  fs.close(ht);
  fs.unlink(root, 'tmp');

  const before = snapshot(fs);
  const image = JSON.parse(JSON.stringify({ pool: pool.toJSON(), fs: fs.toJSON() }));
  // The page cleaner's view: every page of slot 0, skipping free (zero) ones.
  const pages = new Map<number, Uint8Array>();
  for (let p = 0; p < pool.pageCount(); p++)
    if (!pool.isFree(p)) pages.set(p, pool.page(p).slice());

  const pool2 = PagePool.restore(image.pool, pages);
  let t2 = t; // the kernel carries time across the restore
  const fs2 = RamDisk.restore(image.fs, pool2, () => (t2 += 1_000n));
  assert.equal(fs2.dev, 42n);
  assert.deepEqual(fs2.toJSON(), fs.toJSON());
  const after = snapshot(fs2);
  assert.deepEqual(
    after.map((n) => n.path),
    before.map((n) => n.path),
  );
  for (let i = 0; i < before.length; i++) {
    const { atim: _a, ...b } = before[i].stat as Record<string, bigint>;
    const { atim: _b, ...a } = after[i].stat as Record<string, bigint>;
    assert.deepEqual(a, b, before[i].path);
    assert.equal(after[i].data, before[i].data, before[i].path);
    assert.equal(after[i].target, before[i].target, before[i].path);
  }
  assert.deepEqual(fs2.statPath(root, 'etc', true).mtim, 456n);
  // The orphan is still readable through its handle and freed on its last close.
  const ob = new Uint8Array(3);
  assert.equal(fs2.read(ho, 0, ob), 3);
  assert.deepEqual([...ob], [1, 2, 3]);
  const used = pool2.inUse();
  fs2.close(ho);
  assert.equal(pool2.inUse(), used - 1);

  // The restored disk keeps working as its pool grows: new inodes, reused pages.
  const hn = fs2.open(root, 'var/log/new', { create: true });
  assert.ok((hn as number) > (hb as number));
  const more = new Uint8Array(2 * 1024 * 1024).fill(5);
  fs2.write(hn, 0, more);
  fs2.write(hb, big.length, new Uint8Array([0xee]));
  const check = new Uint8Array(big.length + 1);
  fs2.read(hb, 0, check);
  assert.deepEqual(check.subarray(0, big.length), big);
  assert.equal(check[big.length], 0xee);
  const nb = new Uint8Array(more.length);
  fs2.read(hn, 0, nb);
  assert.deepEqual(nb, more);
  assert.ok(fs2.stat(hn).mtim > t, 'timestamps continue from the restored clock');
});

test('restore rejects an image whose pages are not allocated in the pool', () => {
  const pool = new PagePool();
  const fs = new RamDisk(pool, () => 1n);
  const h = fs.open(fs.root(), 'f', { create: true });
  fs.write(h, 0, new Uint8Array(10));
  const json = fs.toJSON();
  assert.throws(() => RamDisk.restore(json, new PagePool(), () => 1n), /not allocated/);
});
