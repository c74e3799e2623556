// A program that runs out of the memory `--memory` allows fails the way it would
// anywhere (malloc returns NULL, the program reports it and exits 1), and the VM
// itself does not crash. And --memory means MiB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import binaryen from 'binaryen';
import { example, roam, tmpdir } from '../helpers.js';

const noCrash = (stderr: string) =>
  assert.doesNotMatch(stderr, /^\s+at /m, `no JavaScript stack trace: ${stderr}`);

test('bigmem 64 under --memory 16: "cannot allocate", exit 1, no VM crash', async () => {
  const r = await roam(['run', '--quiet', '--memory', '16', example('bigmem'), '64', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /bigmem: cannot allocate 64 MiB/);
  noCrash(r.stderr);
  assert.doesNotMatch(r.stderr, /WebAssembly|RangeError|TypeError/, 'the program fails, not roam');
});

test('--memory is in MiB: bigmem 8 fits in --memory 16 and in --memory 64', async () => {
  const ref = await roam(['run', '--quiet', example('bigmem'), '8', '1']);
  assert.equal(ref.code, 0, ref.stderr);
  assert.match(ref.stdout, /^iter 0 checksum [0-9a-f]{8}\ndone checksum [0-9a-f]{8}\n$/);
  for (const mib of ['16', '64']) {
    const r = await roam(['run', '--quiet', '--memory', mib, example('bigmem'), '8', '1']);
    assert.equal(r.code, 0, `--memory ${mib}: ${r.stderr}`);
    assert.equal(r.stdout, ref.stdout);
  }
});

test('a limit just under what the program needs: bigmem 32 under --memory 24 cannot allocate', async () => {
  const r = await roam(['run', '--quiet', '--memory', '24', example('bigmem'), '32', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /bigmem: cannot allocate 32 MiB/);
  noCrash(r.stderr);
});

test('a --memory that is not a positive number is refused, not ignored', async () => {
  for (const bad of ['abc', '0', '-5']) {
    const r = await roam(['run', '--quiet', '--memory', bad, example('counter'), '2', '0']);
    assert.notEqual(r.code, 0, `--memory ${bad} was accepted: ${r.stdout}`);
    assert.equal(r.stdout, '', `--memory ${bad}: nothing may run`);
    assert.match(
      r.stderr,
      /--memory/,
      `--memory ${bad}: the message names the option: ${r.stderr}`,
    );
    noCrash(r.stderr);
  }
});

test('a limit below the memory a module declares it starts with is refused before it runs', async () => {
  const dir = tmpdir('refuse-mem');
  try {
    // 48 initial wasm pages = 3 MiB, asked to run in 1 MiB.
    const mod = binaryen.parseText(`(module
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (memory (export "memory") 48)
      (func (export "_start") (call 0 (i32.const 5))))`);
    const file = path.join(dir, 'big-initial.wasm');
    fs.writeFileSync(file, mod.emitBinary());
    mod.dispose();
    const fits = await roam(['run', '--quiet', '--memory', '3', file]);
    assert.equal(fits.code, 5, `3 MiB is enough: ${fits.stderr}`);
    const r = await roam(['run', '--quiet', '--memory', '1', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /needs at least 3 MiB/);
    assert.match(r.stderr, /limit is 1 MiB/);
    assert.doesNotMatch(r.stderr, /roam: vm [0-9a-f]+ running/, 'no VM may start');
    noCrash(r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
