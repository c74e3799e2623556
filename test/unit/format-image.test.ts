import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { readCheckpoint } from '../../src/format/checkpoint.js';
import { ImageWriter, pageOffset } from '../../src/format/image.js';
import { sampleCheckpoint, writeSample } from '../../src/format/sample.js';
import { computeVerify, PRESENT } from '../../src/format/stream.js';
import { fileTarget } from '../../src/format/target.js';

async function readAt(path: string, pos: number, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(n);
    await fh.read(b, 0, n, pos);
    return b;
  } finally {
    await fh.close();
  }
}

test('image round trip: 1:1 layout, sparse, last write wins, zeroed pages overwritten', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-img-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s = sampleCheckpoint({ seed: 11, slots: { 0: 30, 1: 50, 2: 4 }, rounds: 4 });
  const path = join(dir, 'vm.img');
  const key = randomBytes(32);
  const target = fileTarget(path, { format: 'image', key });
  await writeSample(target, s);

  const st = await stat(path);
  const sb = await readAt(path, 0, 32);
  assert.equal(sb.subarray(0, 8).toString('latin1'), 'ROAMIMG1');
  assert.equal(sb.readUInt32LE(8), 2);
  assert.equal(sb.readUInt32LE(12), PAGE_SIZE);
  const metaOffset = Number(sb.readBigUInt64LE(16));
  const metaLength = Number(sb.readBigUInt64LE(24));
  assert.equal(metaOffset + metaLength, st.size);
  assert.ok(metaOffset >= pageOffset(2, 4), 'metadata after the last slot');
  assert.equal((await readAt(path, metaOffset, 8)).toString('latin1'), 'ROAMSTRM');
  // Slot 2 starts at 8 GiB + 4 KiB; the file must be mostly holes.
  assert.ok(st.size > 8 * 2 ** 30);
  assert.ok(st.blocks * 512 < 4 * 2 ** 20, `allocated ${st.blocks * 512} bytes`);

  // Every page of every slot sits at its fixed offset: final content or zeros.
  let zeroedAfterWrite = 0;
  const everNonZero = new Set(
    s.rounds
      .flat()
      .filter((e) => e.data && e.data.some((v) => v))
      .map((e) => `${e.slot}:${e.page}`),
  );
  for (const [slot, count] of Object.entries(s.spaces).map(([a, b]) => [Number(a), b] as const)) {
    for (let page = 0; page < count; page++) {
      const want = s.final.get(slot)?.get(page) ?? Buffer.alloc(PAGE_SIZE);
      assert.deepEqual(
        await readAt(path, pageOffset(slot, page), PAGE_SIZE),
        want,
        `page ${slot}:${page}`,
      );
      if (!s.final.get(slot)?.has(page) && everNonZero.has(`${slot}:${page}`)) zeroedAfterWrite++;
    }
  }
  assert.ok(zeroedAfterWrite >= 3, `pages zeroed after a non-zero write: ${zeroedAfterWrite}`);

  const cp = await readCheckpoint(path, { key });
  assert.equal(cp.format, 'image');
  assert.equal(cp.signed, true);
  assert.equal(cp.bytes, st.size);
  assert.deepEqual(cp.header, s.header);
  assert.deepEqual([...cp.modules.values()], s.modules);
  assert.deepEqual(cp.kernel, s.kernel);
  assert.deepEqual(cp.verify, s.presenceVerify, 'an image counts its pages by presence');
  assert.deepEqual(Object.fromEntries(cp.spaceSizes), s.spaces);
  let n = 0;
  for (const [slot, pages] of s.final)
    for (const [page, data] of pages) {
      assert.deepEqual(cp.spaces.get(slot)?.get(page), data, `page ${slot}:${page}`);
      n++;
    }
  assert.equal(
    [...cp.spaces.values()].reduce((a, m) => a + m.size, 0),
    n,
  );
});

test('ImageWriter: rewriting a page, and a page that goes back to zero', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-img-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.img');
  const w = await ImageWriter.create(path);
  const a = Buffer.alloc(PAGE_SIZE, 0xaa);
  const b = Buffer.alloc(PAGE_SIZE, 0xbb);
  // Not awaited on purpose: writes must land in call order.
  const p1 = w.writePage(1, 3, a);
  const p2 = w.writePage(1, 3, b);
  const p3 = w.writePage(1, 4, a);
  const p4 = w.writePages([
    { slot: 1, page: 4, data: null },
    { slot: 0, page: 0, data: a },
    { slot: 0, page: 0, data: new Uint8Array(PAGE_SIZE) },
  ]);
  await Promise.all([p1, p2, p3, p4]);
  assert.deepEqual(await readAt(path, pageOffset(1, 3), PAGE_SIZE), b);
  assert.deepEqual(await readAt(path, pageOffset(1, 4), PAGE_SIZE), Buffer.alloc(PAGE_SIZE));
  const kernel = Buffer.from('{"k":1}');
  const header = sampleCheckpoint().header;
  const size = await w.finish({
    header,
    modules: [],
    spaces: { 0: 1, 1: 6 },
    kernel,
    verify: computeVerify(kernel, [[1, 3, PRESENT]]),
  });
  assert.equal((await stat(path)).size, size);
  const cp = await readCheckpoint(path);
  assert.deepEqual([...cp.spaces.keys()], [1]);
  assert.deepEqual([...cp.spaces.get(1)!.keys()], [3]);
  assert.deepEqual(cp.spaces.get(1)!.get(3), b);
});

test('readCheckpoint tells the formats apart by magic', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-img-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s = sampleCheckpoint({ seed: 5, slots: { 0: 3, 1: 3 } });
  await writeSample(fileTarget(join(dir, 'a'), { format: 'stream' }), s);
  await writeSample(fileTarget(join(dir, 'b'), { format: 'image' }), s);
  assert.equal((await readFile(join(dir, 'a'))).subarray(0, 8).toString(), 'ROAMSTRM');
  const [a, b] = [await readCheckpoint(join(dir, 'a')), await readCheckpoint(join(dir, 'b'))];
  assert.equal(a.format, 'stream');
  assert.equal(b.format, 'image');
  assert.deepEqual(a.spaces, b.spaces);
  assert.deepEqual(a.kernel, b.kernel);
  await writeFile(join(dir, 'c'), 'hello world');
  await assert.rejects(readCheckpoint(join(dir, 'c')), /not a roam checkpoint/);
});

// Issue 13, attack 8: bytes written outside every slot are read by nobody and so
// verified by nobody. A forger who puts anything there (here 64 KiB between slot
// 0's last page and slot 1) gets the image refused; the untouched image restores.
test('image: bytes outside every slot are refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-img-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s = sampleCheckpoint({ seed: 5, slots: { 0: 8, 1: 20 }, rounds: 2 });
  const path = join(dir, 'vm.img');
  const key = randomBytes(32);
  await writeSample(fileTarget(path, { format: 'image', key }), s);
  assert.ok(await readCheckpoint(path, { key }), 'the untouched image is accepted');
  const fh = await open(path, 'r+');
  await fh.write(randomBytes(64 * 1024), 0, 64 * 1024, pageOffset(0, 100));
  await fh.sync();
  await fh.close();
  await assert.rejects(readCheckpoint(path, { key }), /outside every slot/);
});
