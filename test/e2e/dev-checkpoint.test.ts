// /dev/checkpoint (thesis Figure 6.3): a program inside the VM reads the VM's own
// checkpoint, itself included. read() returns 0 when the stream is complete in the
// running VM, and -1 in the copy resumed from that stream: "we have arrived".
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { example, roam, tmpdir } from '../helpers.js';

test('a driver program checkpoints its own VM, and the resumed copy knows it has arrived', async () => {
  const dir = tmpdir('dev');
  const out = path.join(dir, 'self.ckpt');
  const ref = await roam(['run', '--quiet', example('counter'), '30', '30']);
  assert.equal(ref.code, 0, ref.stderr);

  const run = await roam([
    'run',
    '--quiet',
    '--dir',
    `${dir}::/out`,
    '--with',
    `${example('counter')} 30 30`,
    example('ckpt-driver'),
    '/out/self.ckpt',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const m = /checkpoint written: (\d+) bytes/.exec(run.stdout);
  assert.ok(m, run.stdout);
  assert.equal(Number(m[1]), fs.statSync(out).size);
  // The VM kept running: the counter finished as if nothing had happened.
  assert.equal(run.stdout.replace(m[0] + '\n', ''), ref.stdout);

  const inspect = await roam(['inspect', out]);
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.match(inspect.stdout, /ckpt-driver\.wasm/);
  assert.match(inspect.stdout, /counter\.wasm 30 30/);

  const resumed = await roam(['restore', '--quiet', out]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /^we have arrived$/m);
  assert.doesNotMatch(resumed.stdout, /checkpoint written/);
  // The counter resumed mid-run and finished with the same result.
  const counterLines = resumed.stdout.split('\n').filter((l) => l && l !== 'we have arrived');
  const refLines = ref.stdout.split('\n').filter(Boolean);
  assert.ok(
    counterLines.length > 0 && counterLines.length <= refLines.length,
    `resumed: ${counterLines.length} of ${refLines.length} lines`,
  );
  assert.deepEqual(counterLines, refLines.slice(refLines.length - counterLines.length));
});
