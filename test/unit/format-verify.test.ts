// VERIFY since format 2: an order-independent page sum kept up to date as pages go
// by, so that nothing proportional to the VM is hashed at END; it must still tell
// a checkpoint whose pages or kernel state differ from what the source froze.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { CheckpointAssembler } from '../../src/format/assemble.js';
import { CheckpointError } from '../../src/format/errors.js';
import { RecordDecoder } from '../../src/format/records.js';
import { sampleCheckpoint, writeSample, type SampleCheckpoint } from '../../src/format/sample.js';
import { streamTarget } from '../../src/format/target.js';
import { computeVerify, PageDigests, pageDigest } from '../../src/format/verify.js';

type Triple = [number, number, Uint8Array];
const page = (fill: number): Buffer => Buffer.alloc(PAGE_SIZE, fill);
const kernel = Buffer.from('{"kernel":"state"}');

test('definition: SHA-256 of a tag, the page count, the page sum and the kernel state; any order', () => {
  const pages: Triple[] = [
    [0, 5, pageDigest(page(1))],
    [1, 0, pageDigest(page(2))],
    [1, 7, pageDigest(page(3))],
  ];
  const set = new PageDigests();
  for (const [s, p, d] of pages) set.set(s, p, d);
  const count = Buffer.alloc(4);
  count.writeUInt32LE(3, 0);
  const want = createHash('sha256')
    .update('roam VERIFY v2\0', 'latin1')
    .update(count)
    .update(set.sum())
    .update(kernel)
    .digest();
  assert.deepEqual(computeVerify(kernel, pages), want);
  assert.deepEqual(computeVerify(kernel, set), want);
  assert.deepEqual(computeVerify(kernel, [...pages].reverse()), want, 'order does not matter');
  assert.deepEqual(pageDigest(page(1)), createHash('sha256').update(page(1)).digest());
  assert.throws(() => computeVerify(kernel, [pages[0], pages[0]]), /given twice/);
});

test('a changed, missing, extra, moved or swapped page, or other kernel state, changes VERIFY', () => {
  const pages: Triple[] = Array.from({ length: 40 }, (_, i) => [
    1 + (i % 3),
    i * 7,
    pageDigest(page(i + 1)),
  ]);
  const good = computeVerify(kernel, pages);
  const variants: Record<string, Triple[]> = {
    changed: pages.map((t, i) => (i === 17 ? [t[0], t[1], pageDigest(page(200))] : t)),
    missing: pages.filter((_, i) => i !== 3),
    extra: [...pages, [9, 1, pageDigest(page(201))]],
    moved: pages.map((t, i) => (i === 5 ? [t[0], t[1] + 1, t[2]] : t)),
    'other slot': pages.map((t, i) => (i === 5 ? [t[0] + 3, t[1], t[2]] : t)),
    swapped: pages.map((t, i) =>
      i === 1 ? [t[0], t[1], pages[2][2]] : i === 2 ? [t[0], t[1], pages[1][2]] : t,
    ),
  };
  for (const [what, v] of Object.entries(variants))
    assert.notDeepEqual(computeVerify(kernel, v), good, what);
  assert.notDeepEqual(
    computeVerify(Buffer.from('{"kernel":"other"}'), pages),
    good,
    'kernel state',
  );
});

test('kept incrementally: pages rewritten or zeroed on the way give the sum of the final state', () => {
  const live = new PageDigests();
  live.set(1, 3, pageDigest(page(1)));
  live.set(1, 3, pageDigest(page(2))); // sent again in a later round
  live.set(1, 900, pageDigest(page(3))); // grows the slot's table
  live.set(2, 0, pageDigest(page(4)));
  live.set(2, 0, null); // became zero
  live.set(5, 1, null); // zero, never held
  const fresh = new PageDigests();
  fresh.set(1, 900, pageDigest(page(3)));
  fresh.set(1, 3, pageDigest(page(2)));
  assert.equal(live.count, 2);
  assert.deepEqual(live.sum(), fresh.sum());
  assert.deepEqual(computeVerify(kernel, live), computeVerify(kernel, fresh));
  assert.deepEqual(
    [...live.entries()].map(([s, p]) => `${s}:${p}`),
    ['1:3', '1:900'],
  );
  assert.equal(live.has(2, 0), false);
  assert.ok(pageDigest(page(2)).equals(live.get(1, 3)!));
});

/** The sample written as a stream, with VERIFY replaced by `verify`, read by an assembler that hashes as it goes. */
async function assembleWith(s: SampleCheckpoint, verify: Buffer) {
  const chunks: Buffer[] = [];
  await writeSample(
    streamTarget((c) => void chunks.push(c)),
    { ...s, verify },
  );
  const dec = new RecordDecoder();
  const asm = new CheckpointAssembler(true, true);
  for (const rec of dec.push(Buffer.concat(chunks))) asm.add(rec);
  dec.finish();
  return asm.result('stream', dec.bytes, false);
}

const finalTriples = (s: SampleCheckpoint): Triple[] =>
  [...s.final].flatMap(([slot, m]) => [...m].map(([p, d]): Triple => [slot, p, pageDigest(d)]));

test('an assembler hashing as pages arrive accepts the right VERIFY and refuses one for a wrong or missing page', async () => {
  const s = sampleCheckpoint({ seed: 7 });
  const cp = await assembleWith(s, s.verify);
  assert.deepEqual(cp.verify, s.verify);
  const triples = finalTriples(s);
  assert.deepEqual(computeVerify(s.kernel, triples), s.verify, 'the sample is what it says');
  const mismatch = (e: unknown) => e instanceof CheckpointError && e.code === 'verify-mismatch';
  // The source believed it sent one page more than the stream holds.
  await assert.rejects(
    assembleWith(s, computeVerify(s.kernel, [...triples, [1, 4000, pageDigest(page(9))]])),
    mismatch,
  );
  // ... or one page less, or one page with other content.
  await assert.rejects(assembleWith(s, computeVerify(s.kernel, triples.slice(1))), mismatch);
  const [slot, p] = triples[0];
  await assert.rejects(
    assembleWith(s, computeVerify(s.kernel, [[slot, p, pageDigest(page(9))], ...triples.slice(1)])),
    mismatch,
  );
});

test('pages a consumer keeps (a prebuilt memory) are dropped by the assembler but still counted in VERIFY', async () => {
  const s = sampleCheckpoint({ seed: 8 });
  const chunks: Buffer[] = [];
  await writeSample(
    streamTarget((c) => void chunks.push(c)),
    s,
  );
  const dec = new RecordDecoder();
  const asm = new CheckpointAssembler(true, true);
  const kept = new Map<string, Buffer | null>();
  asm.onPage = (slot, p, data) => {
    if (slot === 0) return false;
    kept.set(`${slot}:${p}`, data && Buffer.from(data));
    return true;
  };
  for (const rec of dec.push(Buffer.concat(chunks))) asm.add(rec);
  const cp = asm.result('stream', dec.bytes, false);
  assert.deepEqual(
    [...cp.spaces.keys()].filter((k) => k !== 0),
    [],
    'only the kernel pool stays in the assembler',
  );
  for (const [slot, m] of s.final) {
    if (slot === 0) continue;
    for (const [p, d] of m) assert.deepEqual(kept.get(`${slot}:${p}`), d, `page ${slot}:${p}`);
  }
  // Without hashing as it goes, nothing would be left to check the kept pages against.
  const plain = new CheckpointAssembler(true, false);
  plain.onPage = () => true;
  assert.throws(() => {
    for (const rec of new RecordDecoder().push(Buffer.concat(chunks))) plain.add(rec);
  }, /hashAsWeGo/);
});
