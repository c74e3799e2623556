import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { readCheckpoint } from '../../src/format/checkpoint.js';
import { ImageWriter, pageOffset } from '../../src/format/image.js';
import { ImageReader } from '../../src/format/image-read.js';
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

// Pages handed over as views of a program's memory go to the file straight from it
// (direct I/O where the file system takes it), chunk tags are computed as they go by,
// and chunks written again later are tagged from the file: every path must read back
// exactly, into a fresh memory as a restore does, and a flipped byte must be refused.
test('image v2: memory views, rewrites, a hole chunk and a partial chunk read back exactly', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-img-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pages = 700; // chunks of 256 pages: two full, one partial
  const mem = new WebAssembly.Memory({ initial: Math.ceil((pages * PAGE_SIZE) / 65536) });
  const u8 = new Uint8Array(mem.buffer);
  const fill = (p: number): void => {
    u8.set(randomBytes(64), p * PAGE_SIZE + ((p * 97) % 4000));
  };
  for (let p = 0; p < pages; p++) if (p < 256 || p >= 512) fill(p); // chunk 1 stays a hole
  const view = (p: number) => u8.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  const key = randomBytes(32);
  const path = join(dir, 'm.img');
  const target = fileTarget(path, { format: 'image', key });
  const s = sampleCheckpoint({ seed: 3, slots: { 1: pages } });
  await target.begin(s.header, s.modules);
  for (let p = 0; p < pages; p += 100) {
    const batch = [];
    for (let q = p; q < Math.min(pages, p + 100); q++)
      if (u8.subarray(q * PAGE_SIZE, (q + 1) * PAGE_SIZE).some((b) => b !== 0))
        batch.push({ slot: 1, page: q, data: view(q) });
    await target.pages(batch);
  }
  // A later round: pages rewritten in a written chunk and in the partial one, one zeroed.
  for (const p of [3, 300, 650]) fill(p);
  u8.fill(0, 10 * PAGE_SIZE, 11 * PAGE_SIZE);
  await target.pages([3, 10, 300, 650].map((p) => ({ slot: 1, page: p, data: view(p) })));
  const live: Array<[number, number, Uint8Array]> = [];
  for (let p = 0; p < pages; p++) if (view(p).some((b) => b !== 0)) live.push([1, p, PRESENT]);
  await target.finish({ 1: pages }, s.kernel, computeVerify(s.kernel, live));

  const cp = await readCheckpoint(path, { key });
  for (let p = 0; p < pages; p++) {
    const want = view(p).some((b) => b !== 0) ? Buffer.from(view(p)) : undefined;
    assert.deepEqual(cp.spaces.get(1)?.get(p), want, `page ${p}`);
  }
  const img = ImageReader.open(path, { key });
  const fresh = new WebAssembly.Memory({ initial: Math.ceil((pages * PAGE_SIZE) / 65536) });
  const into = new Uint8Array(fresh.buffer);
  assert.equal((await img.load(1, into, true)).length, live.length);
  img.close();
  assert.ok(Buffer.from(into).equals(Buffer.from(u8)), 'loaded into a memory as it was written');

  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, pageOffset(1, 520) + 9);
  b[0] ^= 0x10;
  await fh.write(b, 0, 1, pageOffset(1, 520) + 9);
  await fh.close();
  await assert.rejects(readCheckpoint(path, { key }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'tampered');
    assert.match(e.message, /chunk 2 of frame space 1/);
    return true;
  });
});
