// END mode TRANSPORT: a migration stream carries no digest of its own, because the
// channel authenticates every frame and their order. Only a reader told that it
// is on such a channel accepts it; such a reader accepts nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckpointError } from '../../src/format/errors.js';
import { EndMode, RecordDecoder, RecordEncoder, RecordType } from '../../src/format/records.js';

function stream(opts: { transport?: boolean }): Buffer {
  const enc = new RecordEncoder(opts);
  return Buffer.concat([
    enc.encode(RecordType.HEADER, Buffer.from('{}')),
    enc.encode(RecordType.KERNEL, Buffer.from('k')),
    enc.end(),
  ]);
}
const code = (c: string) => (e: unknown) => e instanceof CheckpointError && e.code === c;

test('a transport-mode stream ends with mode 2 and no digest; a transport reader takes it', () => {
  const buf = stream({ transport: true });
  const end = buf.subarray(buf.length - 33);
  assert.equal(end[0], EndMode.TRANSPORT);
  assert.deepEqual(end.subarray(1), Buffer.alloc(32));
  const dec = new RecordDecoder({ transport: true });
  assert.deepEqual(
    dec.push(buf).map((r) => r.type),
    [RecordType.HEADER, RecordType.KERNEL],
  );
  dec.finish();
  assert.ok(dec.ended);
});

test('an ordinary reader (a file) refuses transport mode; a transport reader refuses the other modes', () => {
  assert.throws(() => new RecordDecoder().push(stream({ transport: true })), code('corrupted'));
  assert.throws(
    () => new RecordDecoder().push(stream({ transport: true })),
    /which this reader cannot know/,
  );
  assert.throws(() => new RecordDecoder({ transport: true }).push(stream({})), /expected 2/);
  const forged = stream({ transport: true });
  forged[forged.length - 1] = 1; // a "digest" where none may be
  assert.throws(() => new RecordDecoder({ transport: true }).push(forged), /must carry no digest/);
  // Truncation is still refused: the END record is what says the stream is whole.
  const cut = new RecordDecoder({ transport: true });
  cut.push(stream({ transport: true }).subarray(0, 20));
  assert.throws(() => cut.finish(), code('truncated'));
  assert.throws(
    () => new RecordEncoder({ transport: true, key: Buffer.alloc(32) }),
    /transport mode/,
  );
  assert.throws(
    () => new RecordDecoder({ transport: true, key: Buffer.alloc(32) }),
    /transport mode/,
  );
});

// Format 3: a transport stream's VERIFY counts which frames hold non-zero pages
// (the channel authenticates their bytes); a page dropped, added or moved is
// still refused, and a file (content digests) is unaffected.
test('transport VERIFY covers the set of non-zero pages and the kernel state', async () => {
  const { CheckpointAssembler } = await import('../../src/format/assemble.js');
  const { FORMAT_VERSION, PRESENT, StreamWriter, computeVerify } =
    await import('../../src/format/index.js');
  const header = {
    format: FORMAT_VERSION,
    pageSize: 4096,
    features: [],
    vmId: 'v',
    kind: 'checkpoint' as const,
    createdAt: new Date(0).toISOString(),
    kernelVersion: 'k',
  };
  const page = (b: number) => Buffer.alloc(4096, b);
  const kernel = Buffer.from('{"k":1}');
  /** A transport stream of `pages` whose VERIFY was computed over `claimed` (slot, page) frames. */
  const build = async (
    pages: Array<[number, number, Buffer]>,
    claimed: Array<[number, number]>,
  ): Promise<Buffer> => {
    const out: Buffer[] = [];
    const w = new StreamWriter((c) => void out.push(Buffer.from(c)), { transport: true });
    await w.header(header);
    await w.pages(pages.map(([slot, p, data]) => ({ slot, page: p, data })));
    await w.kernel(kernel);
    await w.verify(
      computeVerify(
        kernel,
        claimed.map(([s, p]) => [s, p, PRESENT] as const),
      ),
    );
    await w.end();
    return Buffer.concat(out);
  };
  const assemble = (buf: Buffer) => {
    const asm = new CheckpointAssembler(true, true, true);
    const dec = new RecordDecoder({ transport: true });
    for (const r of dec.push(buf)) asm.add(r);
    return asm.result('stream', buf.length, false);
  };
  const pages: Array<[number, number, Buffer]> = [
    [1, 0, page(1)],
    [1, 7, page(2)],
    [0, 3, page(3)],
  ];
  assert.equal(
    assemble(
      await build(pages, [
        [1, 0],
        [1, 7],
        [0, 3],
      ]),
    ).kernel.toString(),
    kernel.toString(),
  );
  for (const claimed of [
    [
      [1, 0],
      [1, 7],
    ],
    [
      [1, 0],
      [1, 7],
      [0, 3],
      [2, 0],
    ],
    [
      [1, 0],
      [1, 8],
      [0, 3],
    ],
  ] as Array<Array<[number, number]>>) {
    await assert.rejects(
      async () => assemble(await build(pages, claimed)),
      code('verify-mismatch'),
    );
  }
  // A content-digest VERIFY (what a file carries) is not what a transport reader expects.
  const { pageDigest } = await import('../../src/format/verify.js');
  const out: Buffer[] = [];
  const w = new StreamWriter((c) => void out.push(Buffer.from(c)), { transport: true });
  await w.header(header);
  await w.pages(pages.map(([slot, p, data]) => ({ slot, page: p, data })));
  await w.kernel(kernel);
  await w.verify(
    computeVerify(
      kernel,
      pages.map(([s, p, d]) => [s, p, pageDigest(d)] as const),
    ),
  );
  await w.end();
  assert.throws(() => assemble(Buffer.concat(out)), code('verify-mismatch'));
});
