import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeStream } from '../../src/format/checkpoint.js';
import { FORMAT_VERSION } from '../../src/format/stream.js';
import { describeCheckpoint, formatDescription } from '../../src/format/inspect.js';
import { sampleCheckpoint, writeSample } from '../../src/format/sample.js';
import { streamTarget } from '../../src/format/target.js';

test('describeCheckpoint and its text rendering', async () => {
  const s = sampleCheckpoint({ seed: 4, slots: { 0: 12, 1: 20, 2: 7 } });
  const parts: Buffer[] = [];
  await writeSample(
    streamTarget((b) => void parts.push(b)),
    s,
  );
  async function* one() {
    yield Buffer.concat(parts);
  }
  const cp = await decodeStream(one());
  const d = describeCheckpoint(cp);
  assert.equal(d.format, 'stream');
  assert.equal(d.bytes, Buffer.concat(parts).length);
  assert.equal(d.vmId, 'vm-sample-4');
  assert.deepEqual(d.features, ['bulk-memory', 'mutable-globals']);
  assert.deepEqual(d.modules, [{ hash: [...cp.modules.keys()][0], size: s.modules[0].length }]);
  assert.deepEqual(
    d.slots.map((x) => [x.slot, x.pageCount, x.pageCountFrom, x.pagesPresent, x.bytes]),
    [0, 1, 2].map((slot) => {
      const present = s.final.get(slot)?.size ?? 0;
      // The sample's kernel state gives page counts for processes (slots >= 1) only.
      return [slot, s.spaces[slot], slot === 0 ? 'spaces' : 'kernel', present, present * 4096];
    }),
  );
  assert.equal(d.kernelBytes, s.kernel.length);
  assert.deepEqual(
    d.processes?.map((p) => [p.pid, p.slot, p.argv.join(' '), p.status]),
    [
      [1, 1, 'prog1 --flag', 'running'],
      [2, 2, 'prog2 --flag', 'running'],
    ],
  );

  const text = formatDescription(d);
  assert.match(text, new RegExp(`^format +stream v${FORMAT_VERSION}, unsigned`, 'm'));
  assert.match(text, /^vm +vm-sample-4$/m);
  assert.match(text, /^features +bulk-memory, mutable-globals$/m);
  const lines = text.split('\n');
  const head = lines.findIndex((l) => /SLOT +WHAT +PAGES +PRESENT +BYTES/.test(l));
  assert.ok(head > 0);
  // Aligned: the PAGES column ends at the same place in every row.
  const end = lines[head].indexOf('PAGES') + 'PAGES'.length;
  for (let i = 1; i <= 3; i++) {
    const row = lines[head + i];
    assert.match(row.slice(0, end), new RegExp(`${s.spaces[i - 1]}$`), row);
  }
  assert.match(text, /^ +1 +1 +running +prog1 --flag$/m);
});
