// Issue 13: the cstrap's stream decoder parses bytes from whoever uploads (the
// customer holds the job key, so signed is not trusted). Random bytes, mutated
// valid streams, and valid records with mutated payloads re-signed under the
// key (so they get past the HMAC into the assembler) must each be refused with
// a RoamError (CheckpointError), never another exception, a crash or a hang.
// ROAM_STREAM_FUZZ_COUNT sets the count (default 3,000; the full run 100,000).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { decodeStream } from '../../src/format/checkpoint.js';
import { RecordDecoder, RecordEncoder } from '../../src/format/records.js';
import { sampleCheckpoint, writeSample } from '../../src/format/sample.js';
import { streamTarget } from '../../src/format/target.js';
import { RoamError } from '../../src/util/errors.js';

const COUNT = Number(process.env.ROAM_STREAM_FUZZ_COUNT ?? 3000);
const key = randomBytes(32);

async function* chunks(b: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < b.length;) {
    const n = randomInt(1, 70_000);
    yield b.subarray(at, at + n);
    at += n;
  }
}

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (randomInt(6)) {
    case 0:
      for (let i = randomInt(1, 6); i > 0 && out.length; i--)
        out[randomInt(out.length)] ^= 1 << randomInt(8);
      return out;
    case 1:
      return out.subarray(0, randomInt(out.length + 1));
    case 2: {
      const at = randomInt(out.length + 1);
      return Buffer.concat([out.subarray(0, at), randomBytes(randomInt(1, 64)), out.subarray(at)]);
    }
    case 3: // a length or type field set to an extreme
      if (out.length >= 4)
        out.writeUInt32LE(
          [0, 1, 0xffffffff, 0x7fffffff, 65536][randomInt(5)],
          randomInt(out.length - 3),
        );
      return out;
    case 4:
      return Buffer.concat([out, randomBytes(randomInt(1, 200))]);
    default:
      return randomBytes(randomInt(0, 300));
  }
}

test(
  `fuzz: ${COUNT} hostile checkpoint streams are refused with a RoamError`,
  { timeout: 600_000 },
  async () => {
    const parts: Buffer[] = [];
    await writeSample(
      streamTarget((b) => void parts.push(b), { key }),
      sampleCheckpoint({ seed: 9, slots: { 0: 3, 1: 6 }, rounds: 2 }),
    );
    const valid = Buffer.concat(parts);
    const records = new RecordDecoder({ key })
      .push(valid)
      .map((r) => [r.type, Buffer.from(r.payload)] as const);
    assert.ok(records.length > 4);
    const resigned = () => {
      const enc = new RecordEncoder({ key });
      const out: Buffer[] = [];
      const pick = randomInt(records.length - 1); // all but END
      for (const [i, [type, payload]] of records.entries()) {
        if (type === 6) break; // END: written by end()
        if (i === pick && randomInt(4) === 0) continue; // a record left out
        out.push(enc.encode(type, i === pick ? mutate(payload) : payload));
        if (i === pick && randomInt(4) === 0) out.push(enc.encode(type, payload)); // or repeated
      }
      out.push(enc.end());
      return Buffer.concat(out);
    };
    const refused = new Map<string, number>();
    let accepted = 0;
    for (let i = 0; i < COUNT; i++) {
      const input = i % 3 === 0 ? resigned() : mutate(valid);
      try {
        await Promise.race([
          decodeStream(chunks(input), { key }),
          new Promise((_, no) =>
            setTimeout(() => no(new Error('hang: no answer in 10 s')), 10_000),
          ),
        ]);
        accepted++; // a mutation that changed nothing the decoder relies on (e.g. an optional record's bytes)
      } catch (e) {
        assert.ok(e instanceof RoamError, `case ${i}: ${e instanceof Error ? e.stack : String(e)}`);
        refused.set(e.code, (refused.get(e.code) ?? 0) + 1);
      }
    }
    console.log(
      `stream fuzz: ${COUNT} inputs, ${accepted} accepted, refused by code:`,
      Object.fromEntries(refused),
    );
    assert.ok(accepted < COUNT / 10, 'nearly every hostile input is refused');
  },
);
