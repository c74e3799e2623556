import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { decodeStream } from '../../src/format/checkpoint.js';
import { RecordDecoder, RecordType } from '../../src/format/records.js';
import { sampleCheckpoint, writeSample, type SampleCheckpoint } from '../../src/format/sample.js';
import { computeVerify, decodePages, pageDigest, type PageEntry } from '../../src/format/stream.js';
import { StreamWriter } from '../../src/format/writer.js';
import { streamTarget } from '../../src/format/target.js';
import type { Checkpoint } from '../../src/format/assemble.js';

async function* chunked(buf: Buffer, size: (i: number) => number): AsyncGenerator<Buffer> {
  let i = 0;
  for (let at = 0; at < buf.length; i++) {
    const n = Math.max(1, size(i));
    yield buf.subarray(at, at + n);
    at += n;
  }
}

async function sampleStream(s: SampleCheckpoint, key?: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  const t = streamTarget((b) => void parts.push(b), { key });
  await writeSample(t, s);
  const buf = Buffer.concat(parts);
  assert.equal(t.bytesWritten, buf.length);
  return buf;
}

function assertMatches(cp: Checkpoint, s: SampleCheckpoint): void {
  assert.deepEqual(cp.header, s.header);
  assert.deepEqual([...cp.modules.values()], s.modules);
  assert.deepEqual(cp.kernel, s.kernel);
  assert.deepEqual(cp.verify, s.verify);
  const norm = (m: Map<number, Map<number, Buffer>>) =>
    [...m]
      .map(([slot, pages]) => [
        slot,
        [...pages]
          .map(([p, b]) => [p, b.toString('hex')])
          .sort((a, b) => Number(a[0]) - Number(b[0])),
      ])
      .sort((a, b) => Number(a[0]) - Number(b[0]));
  assert.deepEqual(norm(cp.spaces), norm(s.final));
  assert.deepEqual(Object.fromEntries(cp.spaceSizes), s.spaces);
}

test('stream round trip: several slots, rewritten pages, pages that become zero', async () => {
  const s = sampleCheckpoint({ seed: 7, slots: { 0: 40, 1: 70, 2: 3, 5: 25 }, rounds: 4 });
  // The sample must actually exercise rewrites and zeroing, or this test proves little.
  const seen = new Map<string, number>();
  let becameZero = 0;
  const lastNonZero = new Set<string>();
  for (const r of s.rounds)
    for (const e of r) {
      const k = `${e.slot}:${e.page}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      const z = !e.data || e.data.every((v) => v === 0);
      if (z && lastNonZero.has(k)) becameZero++;
      if (z) lastNonZero.delete(k);
      else lastNonZero.add(k);
    }
  assert.ok(
    [...seen.values()].some((n) => n >= 3),
    'some page sent 3+ times',
  );
  assert.ok(becameZero >= 5, `pages that became zero: ${becameZero}`);

  const buf = await sampleStream(s);
  const cp = await decodeStream(chunked(buf, () => 65536));
  assertMatches(cp, s);
  assert.equal(cp.format, 'stream');
  assert.equal(cp.bytes, buf.length);
  assert.equal(cp.signed, false);

  const key = randomBytes(32);
  const signed = await sampleStream(s, key);
  const cp2 = await decodeStream(
    chunked(signed, (i) => (i * 7919) % 5000),
    { key },
  );
  assertMatches(cp2, s);
  assert.equal(cp2.signed, true);
});

test('decoder is independent of chunk boundaries (1 byte at a time)', async () => {
  const s = sampleCheckpoint({ seed: 3, slots: { 0: 2, 1: 3 }, rounds: 2 });
  const buf = await sampleStream(s);
  const whole = await decodeStream(chunked(buf, () => buf.length));
  const bytewise = await decodeStream(chunked(buf, () => 1));
  assertMatches(whole, s);
  assertMatches(bytewise, s);
});

test('StreamWriter splits batches into PAGES records of at most 1024 pages, zero pages carry no data', async () => {
  const parts: Buffer[] = [];
  const w = new StreamWriter((b) => void parts.push(b));
  const batch: PageEntry[] = [];
  for (let p = 0; p < 2500; p++) {
    const data =
      p % 3 === 0
        ? null
        : p % 3 === 1
          ? new Uint8Array(PAGE_SIZE)
          : Buffer.alloc(PAGE_SIZE, p & 0xff || 1);
    batch.push({ slot: 1, page: p, data });
  }
  await w.header(sampleCheckpoint().header);
  await w.pages(batch);
  assert.equal(w.pagesWritten, 2500);
  await w.kernel(Buffer.from('{}'));
  await w.verify(Buffer.alloc(32));
  await w.end();
  const buf = Buffer.concat(parts);
  assert.equal(w.bytesWritten, buf.length);
  const dec = new RecordDecoder();
  const pages = dec.push(buf).filter((r) => r.type === RecordType.PAGES);
  dec.finish();
  assert.deepEqual(
    pages.map((r) => r.payload.readUInt32LE(0)),
    [1024, 1024, 452],
  );
  const decoded = pages.flatMap((r) => decodePages(r.payload));
  assert.equal(decoded.length, 2500);
  decoded.forEach((d, i) => {
    assert.equal(d.page, i);
    if (i % 3 === 2) assert.deepEqual(d.data, Buffer.alloc(PAGE_SIZE, i & 0xff || 1));
    else assert.equal(d.data, null);
  });
  // 2500 entries of 9 bytes + 833 raw pages + counts: zero pages cost 9 bytes each.
  assert.equal(
    pages.reduce((n, r) => n + r.payload.length, 0),
    3 * 4 + 2500 * 9 + 833 * PAGE_SIZE,
  );
});

test('StreamWriter copies page bytes at call time and keeps call order without awaiting', async () => {
  const parts: Buffer[] = [];
  const w = new StreamWriter(async (b) => {
    await new Promise((r) => setTimeout(r, 1));
    parts.push(b);
  });
  const live = Buffer.alloc(PAGE_SIZE, 1);
  const calls = [w.header(sampleCheckpoint().header), w.pages([{ slot: 0, page: 0, data: live }])];
  live.fill(2); // mutated after the call: must not affect what was written
  calls.push(w.pages([{ slot: 0, page: 0, data: live }]));
  const kernel = Buffer.from('{}');
  calls.push(
    w.kernel(kernel),
    w.verify(computeVerify(kernel, [[0, 0, pageDigest(Buffer.alloc(PAGE_SIZE, 2))]])),
    w.end(),
  );
  await Promise.all(calls);
  const dec = new RecordDecoder();
  const recs = dec.push(Buffer.concat(parts));
  dec.finish();
  const pages = recs
    .filter((r) => r.type === RecordType.PAGES)
    .map((r) => decodePages(r.payload)[0].data![0]);
  assert.deepEqual(pages, [1, 2]);
  const cp = await decodeStream(chunked(Buffer.concat(parts), () => 100));
  assert.equal(cp.spaces.get(0)!.get(0)![0], 2);
});

test('StreamWriter refuses misuse, and a failing sink fails later calls', async () => {
  const w = new StreamWriter(() => undefined);
  await assert.rejects(w.pages([]), /HEADER must be the first/);
  await assert.rejects(w.header({ ...sampleCheckpoint().header, pageSize: 8192 }), /pageSize/);
  const bad = new StreamWriter(() => {
    throw new Error('ENOSPC: no space left');
  });
  await assert.rejects(bad.header(sampleCheckpoint().header), /ENOSPC/);
  await assert.rejects(bad.kernel(Buffer.from('x')), /ENOSPC/);
  await assert.rejects(bad.flush(), /ENOSPC/);
});
