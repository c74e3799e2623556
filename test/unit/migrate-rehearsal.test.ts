// The rehearsal checkpoints and builds a throwaway VM of the arriving modules, to
// warm the code of a freeze and of an END. It must never run a program, print,
// or leave anything behind (no control socket, no registry entry).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { example, HOME } from '../helpers.js';

process.env.ROAM_HOME = HOME;
const { prepare } = await import('../../src/wasm/prepare.js');
const { rehearse } = await import('../../src/migrate/rehearsal.js');
const { Process } = await import('../../src/guest/process.js');
const { Kernel } = await import('../../src/guest/kernel.js');

test('rehearsal: checkpoints and rebuilds a VM of the modules without running a slice or leaving a trace', async () => {
  const mods = await Promise.all(
    ['counter', 'echo-server'].map((n) => prepare(fs.readFileSync(example(n)))),
  );
  const vms = path.join(HOME, 'vms');
  const before = fs.existsSync(vms) ? fs.readdirSync(vms) : [];
  // Spies on the only ways a program could run or a VM be restored (the real ones are called through).
  const runSlice = Process.prototype.runSlice;
  const restore = Kernel.restore;
  let slices = 0,
    restores = 0;
  const built: import('../../src/guest/kernel.js').Kernel[] = [];
  Process.prototype.runSlice = function (this: InstanceType<typeof Process>) {
    slices++;
    return runSlice.call(this);
  };
  Kernel.restore = async function (...args: Parameters<typeof restore>) {
    restores++;
    const k = await restore.apply(Kernel, args);
    built.push(k);
    return k;
  };
  const written: unknown[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => (
    written.push(chunk),
    (write as any).call(process.stdout, chunk, ...rest)
  )) as typeof process.stdout.write;
  try {
    const compiled = new Map(mods.map((m) => [m.meta.hash, Promise.resolve(m)]));
    await rehearse(mods, { build: compiled });
    await new Promise((r) => setTimeout(r, 50)); // anything it scheduled has had its turn
  } finally {
    Process.prototype.runSlice = runSlice;
    Kernel.restore = restore;
    process.stdout.write = write;
  }
  assert.equal(restores, 1, 'the throwaway VM was built from its checkpoint');
  assert.deepEqual(
    [...built[0].processes.values()].map((p) => p.status),
    ['new', 'new'],
    'both programs are in it, never started',
  );
  assert.equal(slices, 0, 'no program ran');
  assert.equal(written.length, 0, 'nothing printed');
  assert.deepEqual(
    fs.existsSync(vms) ? fs.readdirSync(vms) : [],
    before,
    'no control socket or VM record',
  );
});

test('rehearsal: a source without a build step only checkpoints, and an empty module list is a no-op', async () => {
  const mod = await prepare(fs.readFileSync(example('counter')));
  const restore = Kernel.restore;
  let restores = 0;
  Kernel.restore = async (...args: Parameters<typeof restore>) => (
    restores++,
    restore.apply(Kernel, args)
  );
  try {
    await rehearse([mod]);
    await rehearse([]);
  } finally {
    Kernel.restore = restore;
  }
  assert.equal(restores, 0);
});
