import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { decodeStream, readCheckpoint } from '../../src/format/checkpoint.js';
import { CheckpointError } from '../../src/format/errors.js';
import { pageOffset } from '../../src/format/image.js';
import { OPTIONAL_RECORD, RecordEncoder, RecordType } from '../../src/format/records.js';
import { sampleCheckpoint, writeSample } from '../../src/format/sample.js';
import {
  computeVerify,
  encodeHeader,
  encodeModule,
  encodePages,
  FORMAT_VERSION,
  pageDigest,
} from '../../src/format/stream.js';
import { fileTarget, streamTarget } from '../../src/format/target.js';

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

const small = sampleCheckpoint({ seed: 21, slots: { 0: 2, 1: 2 }, rounds: 2 });

async function streamOf(key?: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  await writeSample(
    streamTarget((b) => void parts.push(b), { key }),
    small,
  );
  return Buffer.concat(parts);
}

/** Rejects with a CheckpointError whose code is one of `codes` (any code if omitted). */
async function refused(
  p: Promise<unknown>,
  codes?: string[],
  msg?: RegExp,
): Promise<CheckpointError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    if (codes)
      assert.ok(codes.includes(e.code), `code ${e.code} (${e.message}) not in ${codes.join(', ')}`);
    if (msg) assert.match(e.message, msg);
    return e;
  }
  assert.fail('the checkpoint was accepted');
}

/** A hand-made stream, for inputs StreamWriter would never produce. */
function craft(records: Array<[number, Buffer]>, key?: Buffer): Buffer {
  const enc = new RecordEncoder({ key });
  return Buffer.concat([...records.map(([t, p]) => enc.encode(t, p)), enc.end()]);
}
const kernel = Buffer.from('{"processes":[]}');
const page = Buffer.alloc(PAGE_SIZE, 7);
const goodVerify = computeVerify(kernel, [[1, 0, pageDigest(page)]]);
const base = (): Array<[number, Buffer]> => [
  [RecordType.HEADER, encodeHeader(small.header)],
  [RecordType.PAGES, encodePages([{ slot: 1, page: 0, data: page }])],
  [RecordType.KERNEL, kernel],
  [RecordType.VERIFY, goodVerify],
];

test('the crafted baseline is accepted (so the refusals below are meaningful)', async () => {
  const cp = await decodeStream(once(craft(base())));
  assert.deepEqual(cp.spaces.get(1)?.get(0), page);
});

test('stream truncated at every offset is refused', async () => {
  for (const key of [undefined, randomBytes(32)]) {
    const buf = await streamOf(key);
    for (let cut = 0; cut < buf.length; cut++) {
      await refused(
        decodeStream(once(buf.subarray(0, cut)), { key }),
        ['truncated', 'not-roam'],
        undefined,
      );
    }
    assert.ok((await decodeStream(once(buf), { key })).kernel.equals(small.kernel));
  }
});

test('a single flipped byte anywhere in a stream is refused', async () => {
  const key = randomBytes(32);
  for (const k of [undefined, key]) {
    const buf = await streamOf(k);
    for (let i = 0; i < buf.length; i++) {
      const bad = Buffer.from(buf);
      bad[i] ^= 1 << (i % 8);
      await refused(decodeStream(once(bad), { key: k }));
    }
  }
});

test('HMAC: wrong key is refused as tampering, a signed file without key asks for --key', async () => {
  const key = randomBytes(32);
  const buf = await streamOf(key);
  await refused(decodeStream(once(buf), { key: randomBytes(32) }), ['tampered'], /HMAC mismatch/);
  await refused(decodeStream(once(buf)), ['key-required'], /signed.*--key FILE.*checkpoint\.key/);
  // Stripping the signature (re-digesting as plain SHA-256) does not fool a reader that has the key.
  const body = buf.subarray(0, buf.length - 41);
  const end = Buffer.alloc(41);
  end.writeUInt32LE(RecordType.END, 0);
  end.writeUInt32LE(33, 4);
  end[8] = 0;
  createHash('sha256').update(body).digest().copy(end, 9);
  const stripped = Buffer.concat([body, end]);
  assert.equal(
    (await decodeStream(once(stripped))).kernel.length,
    small.kernel.length,
    'a valid unsigned stream',
  );
  await refused(decodeStream(once(stripped), { key }), ['unsigned'], /not signed/);
});

test('unknown mandatory record is refused, unknown optional one skipped', async () => {
  const opt = base();
  opt.splice(2, 0, [OPTIONAL_RECORD | 99, Buffer.from('from the future')]);
  const cp = await decodeStream(once(craft(opt)));
  assert.deepEqual(cp.kernel, kernel);
  const mand = base();
  mand.splice(2, 0, [99, Buffer.from('from the future')]);
  await refused(
    decodeStream(once(craft(mand))),
    ['unknown-record'],
    /unknown mandatory record type 99/,
  );
});

test('bad magic, unsupported version, page size, page encoding', async () => {
  await refused(decodeStream(once(Buffer.from('ROAMSTRX'))), ['not-roam'], /not a roam/);
  await refused(decodeStream(once(Buffer.alloc(0))), ['not-roam']);
  // The previous format (VERIFY over sorted digests) and a future one are refused by name.
  for (const format of [FORMAT_VERSION - 1, FORMAT_VERSION + 1]) {
    const other = base();
    other[0] = [RecordType.HEADER, encodeHeader({ ...small.header, format })];
    await refused(
      decodeStream(once(craft(other))),
      ['unsupported'],
      new RegExp(`format version ${format} \\(this roam reads version ${FORMAT_VERSION}\\)`),
    );
  }
  const ps = base();
  ps[0] = [RecordType.HEADER, encodeHeader({ ...small.header, pageSize: 65536 })];
  await refused(decodeStream(once(craft(ps))), ['unsupported'], /page size 65536/);
  // A RAW entry relabelled LZ4: its first data bytes, read as the block length, overrun the record.
  const lz4 = base();
  const p = encodePages([{ slot: 1, page: 0, data: page }]);
  p[12] = 2;
  lz4[1] = [RecordType.PAGES, p];
  await refused(decodeStream(once(craft(lz4))), ['corrupted'], /LZ4 page 1:0 claims/);
});

test('trailing bytes after END are refused', async () => {
  const buf = craft(base());
  await refused(
    decodeStream(once(Buffer.concat([buf, Buffer.from([0])]))),
    ['trailing'],
    /after the END/,
  );
  async function* twoChunks() {
    yield buf;
    yield Buffer.from('more');
  }
  await refused(decodeStream(twoChunks()), ['trailing']);
});

test('VERIFY mismatch, module hash mismatch, missing records', async () => {
  const wrong = base();
  wrong[3] = [
    RecordType.VERIFY,
    computeVerify(Buffer.from('other kernel'), [[1, 0, pageDigest(page)]]),
  ];
  await refused(decodeStream(once(craft(wrong))), ['verify-mismatch'], /VERIFY mismatch/);
  // A later zero page changes the state, so the old VERIFY no longer holds.
  const later = base();
  later.splice(2, 0, [RecordType.PAGES, encodePages([{ slot: 1, page: 0, data: null }])]);
  await refused(decodeStream(once(craft(later))), ['verify-mismatch']);

  const mod = encodeModule(Buffer.from('\0asm\x01\0\0\0'));
  mod[mod.length - 1] ^= 1;
  const m = base();
  m.splice(1, 0, [RecordType.MODULE, mod]);
  await refused(decodeStream(once(craft(m))), ['module-hash'], /MODULE hash mismatch/);

  await refused(
    decodeStream(once(craft(base().filter(([t]) => t !== RecordType.KERNEL)))),
    ['missing'],
    /no KERNEL/,
  );
  await refused(
    decodeStream(once(craft(base().filter(([t]) => t !== RecordType.VERIFY)))),
    ['missing'],
    /no VERIFY/,
  );
  await refused(
    decodeStream(once(craft(base().filter(([t]) => t !== RecordType.HEADER)))),
    ['missing'],
    /HEADER/,
  );
});

// ---- images ----

async function imageOf(dir: string, name: string, key?: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeSample(fileTarget(path, { format: 'image', key }), small);
  return path;
}

async function patch(
  path: string,
  pos: number,
  f: (b: number) => number,
): Promise<() => Promise<void>> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, pos);
  const old = b[0];
  b[0] = f(old);
  await fh.write(b, 0, 1, pos);
  await fh.close();
  return async () => {
    const g = await open(path, 'r+');
    await g.write(Buffer.from([old]), 0, 1, pos);
    await g.close();
  };
}

test('image: flipped bytes in superblock, pages, holes and metadata are refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-ref-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const key = randomBytes(32);
  const path = await imageOf(dir, 'a.img', key);
  const fh = await open(path, 'r');
  const sb = Buffer.alloc(32);
  await fh.read(sb, 0, 32, 0);
  const size = (await fh.stat()).size;
  await fh.close();
  const metaOffset = Number(sb.readBigUInt64LE(16));
  const offsets: number[] = [];
  for (let i = 0; i < 64; i++) offsets.push(i);
  for (let i = 64; i < 4096; i += 97) offsets.push(i);
  // Page area: every page of both slots (data or hole), several spots each.
  for (const [slot, count] of Object.entries(small.spaces)) {
    for (let p = 0; p < count; p++)
      for (const o of [0, 1, 2047, 4095]) offsets.push(pageOffset(Number(slot), p) + o);
  }
  for (let i = metaOffset; i < size; i++) offsets.push(i);
  for (const off of offsets) {
    const restore = await patch(path, off, (b) => b ^ (1 << (off % 8)));
    await refused(readCheckpoint(path, { key }));
    await restore();
  }
  const cp = await readCheckpoint(path, { key });
  assert.deepEqual(cp.kernel, small.kernel);
  await refused(readCheckpoint(path, { key: randomBytes(32) }), ['tampered']);
  await refused(readCheckpoint(path), ['key-required'], /--key FILE/);
});

test('image: truncation, trailing bytes, unsupported version', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-ref-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const probe = await imageOf(dir, 'probe.img');
  const fh = await open(probe, 'r');
  const size = (await fh.stat()).size;
  await fh.close();
  for (const cut of [
    0,
    5,
    100,
    4096,
    4097,
    pageOffset(1, 0) + 10,
    size - 200,
    size - 33,
    size - 1,
  ]) {
    const path = await imageOf(dir, `cut${cut}.img`);
    await truncate(path, cut);
    await refused(readCheckpoint(path), ['truncated', 'not-roam']);
    await rm(path);
  }
  const tr = await imageOf(dir, 'trailing.img');
  await appendFile(tr, Buffer.from([0]));
  await refused(readCheckpoint(tr), ['trailing']);
  // Version 1 (per-page digests in VERIFY) is an older roam's: refused, saying so.
  const v = await imageOf(dir, 'v1.img');
  await patch(v, 8, () => 1);
  await refused(
    readCheckpoint(v),
    ['unsupported'],
    /version 1 \(this roam reads version 2; .*older roam/,
  );
  await patch(v, 8, () => 3);
  await refused(readCheckpoint(v), ['unsupported'], /version 3/);
  const s = await imageOf(dir, 'stream-with-image-magic');
  await writeFile(s, Buffer.concat([Buffer.from('ROAMIMG1'), Buffer.alloc(10)]));
  await refused(readCheckpoint(s), ['truncated']);
});
