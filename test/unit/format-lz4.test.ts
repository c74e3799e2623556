import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { decodeStream } from '../../src/format/checkpoint.js';
import {
  compressionGain,
  compressionPays,
  LZ4_MAX_ENTRY,
  lz4Compress,
  lz4Decompress,
} from '../../src/format/compress.js';
import { CheckpointError } from '../../src/format/errors.js';
import { RecordDecoder, RecordEncoder, RecordType } from '../../src/format/records.js';
import { sampleCheckpoint } from '../../src/format/sample.js';
import {
  computeVerify,
  decodePages,
  encodeHeader,
  encodePages,
  pageDigest,
  PageKind,
  type PageEntry,
} from '../../src/format/stream.js';
import { StreamWriter } from '../../src/format/writer.js';

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

/** mulberry32, so the "text" and "pattern" pages are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  'the of and to in is was for on that with memory page heap stack value null function return checkpoint'.split(
    ' ',
  );
function textPage(rand: () => number): Buffer {
  let s = '';
  while (s.length < PAGE_SIZE)
    s += WORDS[Math.floor(rand() * WORDS.length)] + (rand() < 0.1 ? '.\n' : ' ');
  return Buffer.from(s.slice(0, PAGE_SIZE), 'latin1');
}
/** Array of small structs {tag, pointer, counter}: what a heap page often looks like. */
function patternPage(rand: () => number): Buffer {
  const b = Buffer.alloc(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE / 16; i++) {
    b.writeUInt32LE(7, i * 16);
    b.writeUInt32LE(0x20000 + i * 32, i * 16 + 4);
    b.writeUInt32LE(Math.floor(rand() * 1000), i * 16 + 8);
  }
  return b;
}
const randomPage = (): Buffer => randomBytes(PAGE_SIZE);

type Kind = 'null' | 'zero' | 'random' | 'text' | 'pattern';
const KINDS: Kind[] = ['null', 'zero', 'random', 'text', 'pattern'];
function page(kind: Kind, rand: () => number): Uint8Array | null {
  switch (kind) {
    case 'null':
      return null;
    case 'zero':
      return new Uint8Array(PAGE_SIZE);
    case 'random':
      return randomPage();
    case 'text':
      return textPage(rand);
    case 'pattern':
      // A plain Uint8Array view into a larger buffer, like a view of live guest memory.
      return new Uint8Array(
        Buffer.concat([Buffer.alloc(8), patternPage(rand)]).buffer,
        8,
        PAGE_SIZE,
      );
  }
}

/** The kind of each entry in the PAGES records of a stream, in order. */
function entryKinds(stream: Buffer, key?: Buffer): PageKind[] {
  const dec = new RecordDecoder({ key });
  const recs = dec.push(stream);
  dec.finish();
  const kinds: PageKind[] = [];
  for (const r of recs.filter((x) => x.type === RecordType.PAGES)) {
    const p = r.payload;
    let at = 4;
    for (let i = 0; i < p.readUInt32LE(0); i++) {
      const k = p[at + 8] as PageKind;
      kinds.push(k);
      at +=
        9 + (k === PageKind.RAW ? PAGE_SIZE : k === PageKind.LZ4 ? 4 + p.readUInt32LE(at + 9) : 0);
    }
    assert.equal(at, p.length);
  }
  return kinds;
}

interface Written {
  stream: Buffer;
  writer: StreamWriter;
  final: Map<number, Map<number, Buffer>>;
}

/** Writes the rounds (compress per round), with the right VERIFY, and returns the stream. */
async function writeRounds(
  rounds: Array<{ compress: boolean; batch: PageEntry[] }>,
  key?: Buffer,
): Promise<Written> {
  const parts: Buffer[] = [];
  const w = new StreamWriter((b) => void parts.push(b), { key });
  const final = new Map<number, Map<number, Buffer>>();
  await w.header(sampleCheckpoint().header);
  for (const r of rounds) {
    w.compress = r.compress;
    await w.pages(r.batch);
    for (const e of r.batch) {
      const m = final.get(e.slot) ?? new Map<number, Buffer>();
      final.set(e.slot, m);
      if (e.data === null || e.data.every((b) => b === 0)) m.delete(e.page);
      else m.set(e.page, Buffer.from(e.data));
    }
  }
  const kernel = Buffer.from('{"processes":[]}');
  const digests: Array<[number, number, Buffer]> = [];
  for (const slot of [...final.keys()].sort((a, b) => a - b)) {
    const m = final.get(slot)!;
    if (m.size === 0) final.delete(slot);
    for (const p of [...m.keys()].sort((a, b) => a - b))
      digests.push([slot, p, pageDigest(m.get(p)!)]);
  }
  await w.kernel(kernel);
  await w.verify(computeVerify(kernel, digests));
  await w.end();
  return { stream: Buffer.concat(parts), writer: w, final };
}

const hexMap = (m: Map<number, Map<number, Buffer>>) =>
  [...m]
    .map(([s, ps]) => [
      s,
      [...ps].map(([p, b]) => [p, b.toString('hex')]).sort((a, b) => Number(a[0]) - Number(b[0])),
    ])
    .sort((a, b) => Number(a[0]) - Number(b[0]));

test('mixed batches round trip through StreamWriter with compression on; each page gets the right kind', async () => {
  const rand = rng(11);
  const kinds: Kind[] = [];
  const batch: PageEntry[] = [];
  for (let p = 0; p < 1500; p++) {
    const k = KINDS[p % KINDS.length];
    kinds.push(k);
    batch.push({ slot: 2, page: p, data: page(k, rand) });
  }
  // Round 2 rewrites some pages (text -> random, random -> pattern, pattern -> zero) in another slot mix.
  const round2: PageEntry[] = [];
  for (let p = 0; p < 60; p++) {
    const k = kinds[p];
    round2.push({
      slot: 2,
      page: p,
      data:
        k === 'text'
          ? randomPage()
          : k === 'random'
            ? patternPage(rand)
            : k === 'pattern'
              ? null
              : textPage(rand),
    });
  }
  round2.push({ slot: 0, page: 3, data: textPage(rand) }, { slot: 7, page: 1, data: randomPage() });
  const rounds = [
    { compress: true, batch },
    { compress: false, batch: [{ slot: 1, page: 0, data: textPage(rand) }] },
    { compress: true, batch: round2 },
  ];
  const key = randomBytes(32);
  for (const k of [undefined, key]) {
    const { stream, writer, final } = await writeRounds(rounds, k);
    const cp = await decodeStream(chunked(stream, 777), { key: k });
    assert.deepEqual(hexMap(cp.spaces), hexMap(final));
    assert.equal(cp.signed, k !== undefined);
    assert.equal(writer.bytesWritten, stream.length);
    assert.equal(writer.pagesWritten, 1500 + 1 + 62);

    const got = entryKinds(stream, k);
    const expect = (kind: Kind): PageKind =>
      kind === 'null' || kind === 'zero'
        ? PageKind.ZERO
        : kind === 'random'
          ? PageKind.RAW
          : PageKind.LZ4;
    assert.deepEqual(got.slice(0, 1500), kinds.map(expect));
    assert.equal(got[1500], PageKind.RAW, 'compression off: RAW');
  }
});

test('decoded LZ4 pages are fresh buffers; the writer copies (compresses) page bytes at call time', async () => {
  const rand = rng(5);
  const live = textPage(rand);
  const original = Buffer.from(live);
  const parts: Buffer[] = [];
  const w = new StreamWriter(async (b) => {
    await new Promise((r) => setTimeout(r, 1));
    parts.push(b);
  });
  w.compress = true;
  const calls = [w.header(sampleCheckpoint().header), w.pages([{ slot: 0, page: 0, data: live }])];
  live.fill(9);
  const kernel = Buffer.from('{}');
  calls.push(
    w.kernel(kernel),
    w.verify(computeVerify(kernel, [[0, 0, pageDigest(original)]])),
    w.end(),
  );
  await Promise.all(calls);
  const cp = await decodeStream(chunked(Buffer.concat(parts), 100));
  assert.deepEqual(cp.spaces.get(0)!.get(0), original);

  const payload = encodePages([{ slot: 0, page: 0, data: original }], { compress: true });
  assert.equal(payload[12], PageKind.LZ4);
  const [d] = decodePages(payload);
  assert.deepEqual(d.data, original);
  assert.notEqual(d.data.buffer, payload.buffer);
  payload.fill(0xee, 17);
  assert.deepEqual(d.data, original, 'decoded page does not alias the payload');
});

test('compression shrinks a compressible stream; the writer reports raw vs written page bytes', async () => {
  const rand = rng(3);
  const batch: PageEntry[] = [];
  for (let p = 0; p < 400; p++)
    batch.push({
      slot: 0,
      page: p,
      data: p % 4 === 0 ? null : p % 2 ? textPage(rand) : patternPage(rand),
    });
  const off = await writeRounds([{ compress: false, batch }]);
  const on = await writeRounds([{ compress: true, batch }]);
  assert.equal(off.writer.rawPageBytes, 300 * PAGE_SIZE);
  assert.equal(off.writer.pageDataBytes, 300 * PAGE_SIZE);
  assert.equal(on.writer.rawPageBytes, 300 * PAGE_SIZE);
  const ratio = on.writer.pageDataBytes / on.writer.rawPageBytes;
  assert.ok(ratio < 0.7, `page data ratio ${ratio}`);
  assert.ok(
    on.stream.length < 0.7 * off.stream.length,
    `stream ${on.stream.length} vs ${off.stream.length} bytes`,
  );
  // Page data is all the difference between the two streams.
  assert.equal(
    off.stream.length - on.stream.length,
    off.writer.pageDataBytes - on.writer.pageDataBytes,
  );
  assert.deepEqual(hexMap((await decodeStream(chunked(on.stream, 4096))).spaces), hexMap(on.final));

  // Incompressible pages: compression on changes nothing on the wire.
  const rnd: PageEntry[] = Array.from({ length: 20 }, (_, p) => ({
    slot: 0,
    page: p,
    data: randomPage(),
  }));
  const a = encodePages(rnd);
  assert.deepEqual(encodePages(rnd, { compress: true }), a);
});

/** A PAGES payload with one LZ4 entry whose length field says `len` and whose block is `block`. */
function lz4Payload(
  block: Uint8Array,
  len = block.length,
  extra: Uint8Array = new Uint8Array(0),
): Buffer {
  const head = Buffer.alloc(4 + 9 + 4);
  head.writeUInt32LE(1, 0);
  head.writeUInt32LE(1, 4);
  head.writeUInt32LE(0, 8);
  head[12] = PageKind.LZ4;
  head.writeUInt32LE(len, 13);
  return Buffer.concat([head, block, extra]);
}

function refusedCorrupted(f: () => unknown, msg?: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.equal(e.code, 'corrupted', e.message);
    assert.match(e.message, /^checkpoint is corrupted: /);
    if (msg) assert.match(e.message, msg);
    return true;
  });
}

test('corrupted LZ4 data and wrong compressed lengths are refused as corrupted', () => {
  const text = textPage(rng(9));
  const block = lz4Compress(text);
  assert.ok(block.length + 4 <= LZ4_MAX_ENTRY);
  assert.deepEqual(decodePages(lz4Payload(block))[0].data, text, 'hand-made entry is valid as is');

  // Length field: beyond the record, cut off, too short (the rest is left over), too long by one.
  refusedCorrupted(() => decodePages(lz4Payload(block, block.length + 1)), /claims/);
  refusedCorrupted(() => decodePages(lz4Payload(block, 0xffffffff)), /claims/);
  refusedCorrupted(
    () => decodePages(lz4Payload(block).subarray(0, 15)),
    /inside an LZ4 page length/,
  );
  refusedCorrupted(() => decodePages(lz4Payload(block, block.length - 7)));
  refusedCorrupted(() => decodePages(lz4Payload(block, 0, block)), /LZ4 page 1:0/);
  refusedCorrupted(
    () => decodePages(lz4Payload(Buffer.concat([block, new Uint8Array([0])]))),
    /LZ4 page 1:0/,
  );

  // Data: a match reaching before the start, a truncated block, garbage.
  refusedCorrupted(
    () => decodePages(lz4Payload(Buffer.from([0x1f, 0x41, 0xff, 0xff, 0x00]))),
    /malformed LZ4 block/,
  );
  refusedCorrupted(
    () => decodePages(lz4Payload(block.subarray(0, block.length - 10))),
    /LZ4 page 1:0/,
  );
  refusedCorrupted(() => decodePages(lz4Payload(randomBytes(300))), /LZ4 page 1:0/);
  // Well-formed blocks of the wrong size: half a page, two pages.
  refusedCorrupted(
    () => decodePages(lz4Payload(lz4Compress(text.subarray(0, PAGE_SIZE / 2)))),
    /decodes to 2048 bytes, expected 4096/,
  );
  refusedCorrupted(
    () => decodePages(lz4Payload(lz4Compress(Buffer.concat([text, text])))),
    /LZ4 page 1:0/,
  );
  assert.throws(
    () => lz4Decompress(lz4Compress(text), PAGE_SIZE * 2),
    /decodes to 4096 bytes, expected 8192/,
  );
});

test('random damage to LZ4 entries is refused as corrupted or decodes to exactly one page, never anything else', () => {
  const rand = rng(17);
  const pages = [textPage(rand), patternPage(rand)];
  const payload = encodePages(
    pages.map((data, i) => ({ slot: 0, page: i, data })),
    { compress: true },
  );
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const p = Buffer.from(payload);
    const flips = 1 + Math.floor(rand() * 3);
    for (let f = 0; f < flips; f++)
      p[4 + Math.floor(rand() * (p.length - 4))] ^= 1 + Math.floor(rand() * 255);
    try {
      for (const d of decodePages(p)) if (d.data) assert.equal(d.data.length, PAGE_SIZE);
    } catch (e) {
      assert.ok(e instanceof CheckpointError && e.code === 'corrupted', `unexpected ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused > 1000, `refused ${refused} of 3000`);
});

test('a damaged LZ4 block in a stream is refused by decodeStream as corrupted', async () => {
  const text = textPage(rng(2));
  const kernel = Buffer.from('{}');
  const bad = lz4Payload(Buffer.from([0x1f, 0x41, 0xff, 0xff, 0x00]));
  const enc = new RecordEncoder();
  const stream = Buffer.concat([
    enc.encode(RecordType.HEADER, encodeHeader(sampleCheckpoint().header)),
    enc.encode(RecordType.PAGES, bad),
    enc.encode(RecordType.KERNEL, kernel),
    enc.encode(RecordType.VERIFY, computeVerify(kernel, [[1, 0, pageDigest(text)]])),
    enc.end(),
  ]);
  await assert.rejects(
    decodeStream(chunked(stream, 64)),
    (e: unknown) => e instanceof CheckpointError && e.code === 'corrupted' && /LZ4/.test(e.message),
  );
});

test('compressionGain reports a sane ratio and time; compressionPays applies the link-rate rule', () => {
  const rand = rng(4);
  const text = Array.from({ length: 8 }, () => textPage(rand));
  const g = compressionGain(text);
  assert.ok(g.ratio > 0.05 && g.ratio < 0.8, `text ratio ${g.ratio}`);
  assert.ok(
    Number.isFinite(g.compressUsPerPage) && g.compressUsPerPage > 0 && g.compressUsPerPage < 10_000,
    `${g.compressUsPerPage} us/page`,
  );

  const r = compressionGain(Array.from({ length: 8 }, randomPage));
  assert.equal(r.ratio, 1, 'incompressible pages are sent RAW: no gain');

  const mixed = compressionGain([
    ...text.slice(0, 4),
    ...Array.from({ length: 4 }, randomPage),
    new Uint8Array(PAGE_SIZE),
  ]);
  assert.ok(mixed.ratio > g.ratio && mixed.ratio < 1, `mixed ratio ${mixed.ratio}`);

  assert.deepEqual(compressionGain([]), { ratio: 1, compressUsPerPage: 0 });
  assert.deepEqual(compressionGain([new Uint8Array(PAGE_SIZE)]), {
    ratio: 1,
    compressUsPerPage: 0,
  });
  assert.throws(() => compressionGain([new Uint8Array(100)]), RangeError);

  // 4096 B at 10 MB/s = 410 us raw; half of it plus 10 us compressing wins. At 10 GB/s it does not.
  const half = { ratio: 0.5, compressUsPerPage: 10 };
  assert.equal(compressionPays(half, 10e6), true);
  assert.equal(compressionPays(half, 10e9), false);
  assert.equal(compressionPays({ ratio: 1, compressUsPerPage: 0 }, 1e3), false);
  assert.equal(compressionPays(half, 0), false);
});
