// The instrumentation passes on functions whose whole body is one instruction: a
// bare memory.size/memory.grow must still see and move the hidden region, a bare
// memory.fill must still fill and be seen by the write barrier, and a bare loop
// must still get its safepoint poll. (The passes used to drop a replaced root.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import binaryen from 'binaryen';
import { instrument } from '../../src/wasm/pipeline.js';

const WAT = `(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (memory 1 100)
  (func (export "size") (result i32) (memory.size))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "fill") (param i32 i32) (memory.fill (local.get 0) (i32.const 7) (local.get 1)))
  (func (export "spin") (param i32)
    (loop $l
      (drop (call $yield))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (local.get 0))))
  (func (export "_start")))`;

interface Exports {
  size(): number;
  grow(pages: number): number;
  fill(at: number, len: number): void;
  spin(n: number): void;
  roam_dirty_base: WebAssembly.Global;
}

async function build() {
  const mod = binaryen.parseText(WAT);
  mod.setFeatures(
    binaryen.Features.MVP | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt,
  );
  const bytes = mod.emitBinary();
  mod.dispose();
  // binaryen.js only: a unit test starts no process (wasm-opt is one).
  const { meta, plain, tracked } = await instrument(bytes, { jsOnly: true });
  const memory = new WebAssembly.Memory({
    initial: meta.initialPages + meta.regionPages,
    maximum: meta.maxPages + meta.regionPages,
  });
  let polls = 0;
  const imports = {
    roam: { memory, poll: () => void polls++ },
    wasi_snapshot_preview1: { sched_yield: () => 0 },
  };
  const inst = (m: Uint8Array) =>
    new WebAssembly.Instance(new WebAssembly.Module(m as Uint8Array<ArrayBuffer>), imports)
      .exports as unknown as Exports;
  return { meta, memory, plain: inst(plain), tracked: inst(tracked), polls: () => polls };
}

test('a function that is only memory.size or memory.grow sees the program its own pages, not roam region', async () => {
  for (const variant of ['plain', 'tracked'] as const) {
    const vm = await build();
    const ex = vm[variant];
    assert.equal(ex.size(), 1, variant);
    assert.equal(ex.grow(2), 1, variant);
    assert.equal(ex.size(), 3, variant);
    assert.equal(
      vm.memory.buffer.byteLength / 65536,
      3 + vm.meta.regionPages,
      `${variant}: the region moved up`,
    );
  }
});

test('a function that is only memory.fill fills, and the tracked variant marks the pages it wrote', async () => {
  const vm = await build();
  vm.tracked.fill(5000, 5000); // bytes 5000..9999: pages 1 and 2
  const u8 = new Uint8Array(vm.memory.buffer);
  assert.deepEqual([u8[4999], u8[5000], u8[9999], u8[10000]], [0, 7, 7, 0]);
  const dirty = u8.subarray(
    vm.tracked.roam_dirty_base.value as number,
    (vm.tracked.roam_dirty_base.value as number) + 16,
  );
  assert.deepEqual([...dirty.subarray(0, 4)], [0, 1, 1, 0]);
  vm.plain.fill(20000, 10);
  assert.equal(u8[20005], 7);
});

test('a function that is only a loop polls at its loop header', async () => {
  const vm = await build();
  vm.plain.spin(5);
  // Fuel stays below zero (the stub never refills it): every poll calls in.
  assert.equal(vm.polls(), 1 + 5, 'one poll at entry and one per iteration');
});

// The call graph: a call through the table reaches only the table's functions of
// the call's own signature, so only those make the caller unwindable.
const GRAPH = `(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (memory 1 100)
  (table 3 funcref)
  (elem (i32.const 0) $sleepy $add $double)
  (func $sleepy (param i32) (result i32) (drop (call $yield)) (local.get 0))
  (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func $double (param f64) (result f64) (f64.add (local.get 0) (local.get 0)))
  (func $via_i32 (export "via_i32") (param i32) (result i32)
    (call_indirect (param i32) (result i32) (local.get 0) (i32.const 0)))
  (func $via_pair (export "via_pair") (param i32) (result i32)
    (call_indirect (param i32 i32) (result i32) (local.get 0) (local.get 0) (i32.const 1)))
  (func $caller (export "caller") (param i32) (result i32) (call $via_i32 (local.get 0)))
  (func (export "_start")))`;

test('only functions that can reach a blocking import through calls of matching signature are unwindable', async () => {
  const { unwindableFunctions } = await import('../../src/wasm/instrument.js');
  const mod = binaryen.parseText(GRAPH);
  const set = unwindableFunctions(mod, new Set(['wasi_snapshot_preview1.sched_yield']));
  mod.dispose();
  assert.deepEqual(
    [...set].sort(),
    ['$caller', '$sleepy', '$via_i32'].map((n) => n.slice(1)).sort(),
  );
});
