// `roam run` refuses what it cannot run: a missing file, a file that is not
// WebAssembly, a module that imports something other than WASI, a module with no
// _start. Each exits non-zero with a message naming the problem, before any VM starts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import binaryen from 'binaryen';
import { roam, tmpdir } from '../helpers.js';

const dir = tmpdir('refuse-prog');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Assembles WebAssembly text into `dir/name.wasm`. */
function wasm(name: string, text: string): string {
  const mod = binaryen.parseText(text);
  try {
    const file = path.join(dir, `${name}.wasm`);
    fs.writeFileSync(file, mod.emitBinary());
    return file;
  } finally {
    mod.dispose();
  }
}

async function refused(args: string[], ...why: RegExp[]): Promise<void> {
  const r = await roam(['run', ...args]);
  const ctx = `roam run ${args.join(' ')}: code ${r.code}, stderr ${JSON.stringify(r.stderr)}`;
  assert.notEqual(r.code, 0, ctx);
  assert.equal(r.stdout, '', ctx);
  for (const w of why) assert.match(r.stderr, w, ctx);
  assert.doesNotMatch(r.stderr, /roam: vm [0-9a-f]+ running/, `${ctx}: no VM may start`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${ctx}: a refusal, not a crash`);
}

test('control: a hand-assembled WASI command runs (so the refusals below are about the named problem)', async () => {
  const ok = wasm(
    'ok',
    `(module
    (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") (call 0 (i32.const 7))))`,
  );
  const r = await roam(['run', '--quiet', ok]);
  assert.equal(r.code, 7, r.stderr);
});

test('a missing program file', async () => {
  const missing = path.join(dir, 'no-such-program.wasm');
  await refused([missing], /no-such-program\.wasm/, /ENOENT|no such file|not found/i);
});

test('a directory instead of a program', async () => {
  await refused([dir], /EISDIR|is a directory/i);
});

test('files that are not WebAssembly: text, random bytes, empty', async () => {
  const text = path.join(dir, 'notes.txt');
  fs.writeFileSync(text, 'hello, I am not a module\n');
  const rnd = path.join(dir, 'random.wasm');
  fs.writeFileSync(rnd, randomBytes(4096));
  const empty = path.join(dir, 'empty.wasm');
  fs.writeFileSync(empty, '');
  await refused([text], /notes\.txt/, /magic|not a WebAssembly|not a wasm/i);
  await refused([rnd], /random\.wasm/, /magic|not a WebAssembly|not a wasm/i);
  await refused([empty], /empty\.wasm/, /empty/i);
});

test('a module importing env.foo (not WASI)', async () => {
  const f = wasm(
    'env-foo',
    '(module (import "env" "foo" (func)) (func (export "_start") (call 0)))',
  );
  await refused([f], /env\.foo/, /unsupported import|WASI/);
  const g = wasm(
    'env-foo-mem',
    '(module (import "env" "foo" (func)) (memory (export "memory") 1) (func (export "_start") (call 0)))',
  );
  await refused([g], /env\.foo/, /unsupported import|WASI/);
});

test('a module importing a WASI function that does not exist', async () => {
  const f = wasm(
    'wasi-bogus',
    `(module
    (import "wasi_snapshot_preview1" "no_such_call" (func))
    (memory (export "memory") 1)
    (func (export "_start") (call 0)))`,
  );
  await refused([f], /no_such_call/);
});

test('a module with no _start export', async () => {
  const lib = wasm('library', '(module (memory (export "memory") 1) (func (export "main")))');
  await refused([lib], /_start/);
  const wasiLib = wasm(
    'wasi-library',
    `(module
    (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
    (memory (export "memory") 1)
    (func (export "main") (call 0 (i32.const 0))))`,
  );
  await refused([wasiLib], /_start/);
});
