// END mode TRANSPORT: a migration stream carries no digest of its own, because the
// channel authenticates every frame and their order. Only a reader told that it
// is on such a channel accepts it; such a reader accepts nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckpointError } from '../src/format/errors.js';
import { EndMode, RecordDecoder, RecordEncoder, RecordType } from '../src/format/records.js';

function stream(opts: { transport?: boolean }): Buffer {
  const enc = new RecordEncoder(opts);
  return Buffer.concat([enc.encode(RecordType.HEADER, Buffer.from('{}')), enc.encode(RecordType.KERNEL, Buffer.from('k')), enc.end()]);
}
const code = (c: string) => (e: unknown) => e instanceof CheckpointError && e.code === c;

test('a transport-mode stream ends with mode 2 and no digest; a transport reader takes it', () => {
  const buf = stream({ transport: true });
  const end = buf.subarray(buf.length - 33);
  assert.equal(end[0], EndMode.TRANSPORT);
  assert.deepEqual(end.subarray(1), Buffer.alloc(32));
  const dec = new RecordDecoder({ transport: true });
  assert.deepEqual(dec.push(buf).map((r) => r.type), [RecordType.HEADER, RecordType.KERNEL]);
  dec.finish();
  assert.ok(dec.ended);
});

test('an ordinary reader (a file) refuses transport mode; a transport reader refuses the other modes', () => {
  assert.throws(() => new RecordDecoder().push(stream({ transport: true })), code('corrupted'));
  assert.throws(() => new RecordDecoder().push(stream({ transport: true })), /which this reader cannot know/);
  assert.throws(() => new RecordDecoder({ transport: true }).push(stream({})), /expected 2/);
  const forged = stream({ transport: true });
  forged[forged.length - 1] = 1; // a "digest" where none may be
  assert.throws(() => new RecordDecoder({ transport: true }).push(forged), /must carry no digest/);
  // Truncation is still refused: the END record is what says the stream is whole.
  const cut = new RecordDecoder({ transport: true });
  cut.push(stream({ transport: true }).subarray(0, 20));
  assert.throws(() => cut.finish(), code('truncated'));
  assert.throws(() => new RecordEncoder({ transport: true, key: Buffer.alloc(32) }), /transport mode/);
  assert.throws(() => new RecordDecoder({ transport: true, key: Buffer.alloc(32) }), /transport mode/);
});
