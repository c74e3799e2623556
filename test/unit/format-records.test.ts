import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { CheckpointError } from '../../src/format/errors.js';
import {
  MAX_RECORD_PAYLOAD,
  OPTIONAL_RECORD,
  RecordDecoder,
  RecordEncoder,
  RecordType,
  STREAM_MAGIC,
  type Rec,
} from '../../src/format/records.js';

function build(key?: Buffer, extra: Array<[number, Buffer]> = []): Buffer {
  const enc = new RecordEncoder({ key });
  const parts = [
    enc.encode(RecordType.HEADER, Buffer.from('{"a":1}')),
    ...extra.map(([t, p]) => enc.encode(t, p)),
    enc.encode(RecordType.KERNEL, Buffer.from('kernel state')),
    enc.encode(RecordType.PAGES, Buffer.alloc(0)),
    enc.end(),
  ];
  const out = Buffer.concat(parts);
  assert.equal(enc.bytes, out.length);
  return out;
}

function decodeAll(
  buf: Buffer,
  chunk: number,
  opts: ConstructorParameters<typeof RecordDecoder>[0] = {},
): Rec[] {
  const dec = new RecordDecoder(opts);
  const out: Rec[] = [];
  for (let i = 0; i < buf.length; i += chunk) out.push(...dec.push(buf.subarray(i, i + chunk)));
  dec.finish();
  return out;
}

const codeOf = (code: string) => (e: unknown) => e instanceof CheckpointError && e.code === code;

test('layout: magic, u32 LE type, u32 LE length, END = mode + SHA-256 of all preceding bytes', () => {
  const buf = build();
  assert.equal(buf.subarray(0, 8).toString('latin1'), 'ROAMSTRM');
  assert.equal(buf.readUInt32LE(8), RecordType.HEADER);
  assert.equal(buf.readUInt32LE(12), 7);
  assert.equal(buf.subarray(16, 23).toString(), '{"a":1}');
  const endAt = buf.length - 8 - 33;
  assert.equal(buf.readUInt32LE(endAt), RecordType.END);
  assert.equal(buf.readUInt32LE(endAt + 4), 33);
  assert.equal(buf[endAt + 8], 0);
  assert.deepEqual(
    buf.subarray(endAt + 9),
    createHash('sha256').update(buf.subarray(0, endAt)).digest(),
  );
});

test('keyed END is HMAC-SHA256 (mode 1)', () => {
  const key = randomBytes(32);
  const buf = build(key);
  const endAt = buf.length - 8 - 33;
  assert.equal(buf[endAt + 8], 1);
  assert.deepEqual(
    buf.subarray(endAt + 9),
    createHmac('sha256', key).update(buf.subarray(0, endAt)).digest(),
  );
});

test('decoder returns the same records whatever the chunk size', () => {
  const buf = build();
  const whole = decodeAll(buf, buf.length);
  assert.deepEqual(
    whole.map((r) => r.type),
    [RecordType.HEADER, RecordType.KERNEL, RecordType.PAGES],
  );
  assert.equal(whole[1].payload.toString(), 'kernel state');
  for (const chunk of [1, 2, 3, 7, 8, 9, 16, 33]) {
    const got = decodeAll(buf, chunk);
    assert.deepEqual(
      got.map((r) => [r.type, r.offset, r.payload.toString('hex')]),
      whole.map((r) => [r.type, r.offset, r.payload.toString('hex')]),
      `chunk size ${chunk}`,
    );
  }
});

test('unknown optional records are skipped, unknown mandatory ones refused', () => {
  const opt = build(undefined, [[OPTIONAL_RECORD | 0x1234, Buffer.from('future stuff')]]);
  const dec = new RecordDecoder();
  const recs = dec.push(opt);
  dec.finish();
  assert.deepEqual(
    recs.map((r) => r.type),
    [RecordType.HEADER, RecordType.KERNEL, RecordType.PAGES],
  );
  assert.equal(dec.skipped, 1);

  const mand = build(undefined, [[0x1234, Buffer.from('future stuff')]]);
  assert.throws(
    () => decodeAll(mand, 5),
    (e: unknown) =>
      codeOf('unknown-record')(e) &&
      /unknown mandatory record type 4660/.test((e as Error).message),
  );
});

test('refuses bad magic early, truncation, trailing bytes, oversized records', () => {
  assert.throws(() => new RecordDecoder().push(Buffer.from('ROAMX')), codeOf('not-roam'));
  assert.throws(() => new RecordDecoder().push(Buffer.from('\x7fELF')), codeOf('not-roam'));
  const empty = new RecordDecoder();
  assert.throws(() => empty.finish(), codeOf('not-roam'));

  const buf = build();
  for (const cut of [4, 8, 12, 16, 20, buf.length - 33, buf.length - 1]) {
    const dec = new RecordDecoder();
    dec.push(buf.subarray(0, cut));
    assert.throws(() => dec.finish(), codeOf(cut < 8 ? 'not-roam' : 'truncated'), `cut at ${cut}`);
  }
  assert.throws(() => decodeAll(Buffer.concat([buf, Buffer.from([0])]), 1000), codeOf('trailing'));
  const dec = new RecordDecoder();
  dec.push(buf);
  assert.throws(() => dec.push(Buffer.from('x')), codeOf('trailing'));

  const big = Buffer.alloc(16);
  STREAM_MAGIC.copy(big);
  big.writeUInt32LE(RecordType.PAGES, 8);
  big.writeUInt32LE(MAX_RECORD_PAYLOAD + 1, 12);
  assert.throws(() => new RecordDecoder().push(big), codeOf('too-large'));
  assert.throws(
    () => new RecordEncoder().encode(RecordType.PAGES, Buffer.alloc(MAX_RECORD_PAYLOAD + 1)),
    /too large/,
  );
});

test('END verification: key needed, wrong key, unsigned with a key', () => {
  const key = randomBytes(32);
  const signed = build(key);
  assert.equal(decodeAll(signed, 100, { key }).length, 3);
  assert.throws(
    () => decodeAll(signed, 100),
    (e: unknown) =>
      codeOf('key-required')(e) &&
      /--key FILE/.test((e as Error).message) &&
      /checkpoint\.key/.test((e as Error).message),
  );
  assert.throws(() => decodeAll(signed, 100, { key: randomBytes(32) }), codeOf('tampered'));
  const plain = build();
  assert.throws(() => decodeAll(plain, 100, { key }), codeOf('unsigned'));
  assert.equal(decodeAll(plain, 100, { key, allowUnsigned: true }).length, 3);
});
