// A migration writes each arriving page into the memory the program will run in,
// so the build after END copies nothing: the module's data segments, which
// instantiation writes, must not clobber those pages (nor a fresh start lack them).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { Memories } from '../../src/checkpoint/memories.js';
import { countDirty, dirtyPages } from '../../src/memory/frames.js';
import { Process } from '../../src/guest/process.js';
import { dataSegmentRanges } from '../../src/wasm/segments.js';
import { example, HOME } from '../helpers.js';

process.env.ROAM_HOME = HOME;
const { prepare } = await import('../../src/wasm/prepare.js');

/** Every import a stub: the test only instantiates, it runs nothing. */
const stubs = (mod: WebAssembly.Module) => (): WebAssembly.Imports => {
  const imp: Record<string, Record<string, () => number>> = {};
  for (const i of WebAssembly.Module.imports(mod))
    if (i.kind === 'function') (imp[i.module] ??= {})[i.name] = () => 0;
  return imp;
};

test('data segments: a fresh process has them, a prebuilt memory keeps its pages', async () => {
  const mod = await prepare(fs.readFileSync(example('counter')));
  const ranges = dataSegmentRanges(mod.original);
  assert.ok(ranges && ranges.length > 0, 'counter has active data segments');
  const [a, b] = ranges[0];
  const fresh = new Process(1, 1, ['counter'], [], mod, stubs(mod.plain));
  assert.ok(
    fresh
      .bytes()
      .subarray(a, b)
      .some((x) => x !== 0),
    'instantiation wrote the segment',
  );

  const programPages = mod.meta.initialPages + 3;
  const mem = new WebAssembly.Memory({
    initial: programPages + mod.meta.regionPages,
    maximum: mod.meta.maxPages + mod.meta.regionPages,
  });
  const restored = Buffer.alloc(programPages * 65536, 0xa5);
  new Uint8Array(mem.buffer).set(restored);
  const p = new Process(2, 2, ['counter'], [], mod, stubs(mod.plain), undefined, mem);
  assert.equal(p.memory, mem);
  assert.ok(
    Buffer.from(p.bytes().buffer, 0, restored.length).equals(restored),
    'not one byte of the restored pages changed',
  );
  assert.equal(p.virtPages(), programPages, 'the hidden region was already there: nothing grown');
});

test('segment ranges: constant offsets of active segments; passive ones skipped; anything else unknown', () => {
  const head = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 5, 3, 1, 0, 1];
  const data = (body: number[]) => Uint8Array.from([...head, 11, body.length, ...body]);
  // Two segments: active at 16 (3 bytes), passive (2 bytes); then active at -1 (wraps to 2^32-1).
  assert.deepEqual(dataSegmentRanges(data([2, 0, 0x41, 0x10, 0x0b, 3, 1, 2, 3, 1, 2, 9, 9])), [
    [16, 19],
  ]);
  assert.deepEqual(dataSegmentRanges(data([1, 0, 0x41, 0x7f, 0x0b, 1, 7])), [
    [0xffffffff, 0x100000000],
  ]);
  // An offset from a global: the whole initial memory must be kept instead.
  assert.equal(dataSegmentRanges(data([1, 0, 0x23, 0, 0x0b, 1, 7])), null);
  assert.equal(dataSegmentRanges(Uint8Array.from([...head, 11, 9, 1])), null, 'truncated');
});

test('prebuilt memories: sized to the announced pages plus the hidden region; a page no program could have is refused', () => {
  const m = new Memories();
  m.reserve(new Map([[1, 64]])); // 64 pages of 4 KiB: 4 wasm pages
  m.start([{ maximum: 100, region: 17 }], []);
  assert.equal(
    m.put(0, 0, Buffer.alloc(4096, 1)),
    false,
    'the kernel pool is not a program memory',
  );
  assert.equal(m.put(1, 5, Buffer.alloc(4096, 2)), true);
  assert.equal(m.take(1)!.buffer.byteLength, (4 + 17) * 65536);
  assert.equal(new Uint8Array(m.take(1)!.buffer)[5 * 4096], 2);
  assert.equal(m.put(1, 5, null), true);
  assert.equal(new Uint8Array(m.take(1)!.buffer)[5 * 4096], 0);
  assert.throws(() => m.put(1, 100 * 16, Buffer.alloc(4096, 3)), /beyond the largest memory/);
  const mixed = new Memories();
  mixed.start(
    [
      { maximum: 100, region: 17 },
      { maximum: 200, region: 17 },
    ],
    [],
  );
  assert.equal(
    mixed.put(1, 0, Buffer.alloc(4096, 1)),
    false,
    'programs that differ: nothing prebuilt',
  );
  assert.equal(mixed.holds(1), false);
});

test('dirty vectors: the chunked scan finds exactly the non-zero bytes, and clears them', () => {
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (const len of [0, 1, 255, 256, 257, 4096, 65536 + 77]) {
    const map = new Uint8Array(len);
    for (let i = 0; i < len; i++) if (rnd() < 0.01) map[i] = 1 + Math.floor(rnd() * 255);
    if (len > 0) map[len - 1] = 1;
    const want: number[] = [];
    map.forEach((v, i) => {
      if (v) want.push(i);
    });
    assert.equal(countDirty(map), want.length);
    assert.deepEqual(dirtyPages(map, true), want, `length ${len}`);
    assert.equal(countDirty(map), 0, 'cleared');
  }
});
