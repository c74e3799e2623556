// Each example, checkpointed at random moments while it runs (mid-loop, inside a
// blocking syscall) and restored in a new process, prints exactly what an
// uninterrupted run prints.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { readCheckpoint, defaultKeyPath, loadKey } from '../../src/format/index.js';
import { HOME, example, rng, roam, start, tmpdir, until } from '../helpers.js';

interface Case {
  name: string;
  args: string[];
  format: 'stream' | 'image';
}
const cases: Case[] = [
  { name: 'counter', args: ['40', '50'], format: 'stream' }, // mostly asleep in poll_oneoff
  { name: 'bigmem', args: ['32', '30'], format: 'image' }, // CPU-bound, mid-loop
  { name: 'bigmem', args: ['8', '30', '40'], format: 'stream' }, // sleeps between iterations
  { name: 'files', args: ['/tmp/work', '60'], format: 'stream' }, // RAM disk, open files
  { name: 'sieve-as', args: ['200000000', '5000000'], format: 'image' }, // AssemblyScript
];

const stdoutAtFreeze = async (file: string): Promise<number> => {
  const cp = await readCheckpoint(file, {
    key: await loadKey(defaultKeyPath({ ROAM_HOME: HOME })),
  });
  return JSON.parse(cp.kernel.toString()).stdoutBytes;
};

for (const c of cases) {
  test(`${c.name} ${c.args.join(' ')}: checkpoint while running, restore elsewhere, same output (${c.format})`, async () => {
    const reference = await roam(['run', '--quiet', example(c.name), ...c.args]);
    assert.equal(reference.code, 0, reference.stderr);
    assert.ok(reference.stdout.length > 0);

    const dir = tmpdir('ck');
    const random = rng(c.name.length * 7919 + c.args.length);
    const vm = start(['run', example(c.name), ...c.args]);
    const id = await vm.vmId;
    const files: string[] = [];
    // Take checkpoints at random moments until the program has printed half its output.
    for (let i = 0; i < 3; i++) {
      await until(
        () => vm.stdout().length >= (reference.stdout.length * (i + random())) / 6,
        'progress',
      );
      const file = path.join(dir, `ck${i}`);
      const r = await roam(['checkpoint', id, '-o', file, '--format', c.format, '--verify']);
      if (
        r.code !== 0 &&
        /no running VM|closed the control connection|\[vm-exited\]/.test(r.stderr)
      )
        break; // finished first
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /written to/);
      files.push(file);
    }
    assert.equal(await vm.exited, 0, vm.stderr());
    assert.equal(vm.stdout(), reference.stdout, 'a checkpoint must not disturb the running VM');
    assert.ok(files.length > 0, 'at least one checkpoint was taken while the program ran');

    for (const file of files) {
      const at = await stdoutAtFreeze(file);
      const restored = await roam(['restore', '--quiet', file]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.equal(
        restored.stdout,
        reference.stdout.slice(at),
        `restored from ${path.basename(file)} (stdout offset ${at})`,
      );
    }
  });
}
