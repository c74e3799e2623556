// The checker (thesis 9.1.4) refuses what must never run and clamps what it can.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble } from '../../src/blink/asm.js';
import { check } from '../../src/blink/check.js';
import { BlinkRefusal, MAX_INSTRUCTIONS } from '../../src/blink/ops.js';

const refused = (bytes: Uint8Array, code: string, cb: 'redraw' | 'input' = 'redraw') =>
  assert.throws(
    () => check(bytes, cb),
    (e: unknown) => e instanceof BlinkRefusal && e.code === `blink-${code}`,
    `expected blink-${code}`,
  );

void test('a well-formed redraw procedure passes, with its jump targets', () => {
  const p = check(
    assemble('ext r0 time; jlt r0 1 1; clear color; draw #2 triangles 0 r1'),
    'redraw',
  );
  assert.equal(p.instrs.length, 4);
  assert.deepEqual([...p.targets], [3]);
});

void test('a backward jump (a loop) is refused', () => {
  refused(assemble('add r0 r0 1; jmp -2'), 'loop');
  refused(assemble('jlt r0 10 -1'), 'loop');
});

void test('a jump past the end is refused; a jump to the end is not', () => {
  refused(assemble('jmp 2; nop'), 'jump-outside');
  check(assemble('jmp 1; nop'), 'redraw');
});

void test('a viewport outside any window is refused', () => {
  refused(assemble('viewport -10 0 100 100'), 'outside-window');
  refused(assemble('viewport 0 0 100000 100'), 'outside-window');
  check(assemble('viewport 0 0 512 512'), 'redraw');
});

void test('unknown opcodes, registers and objects out of range are refused', () => {
  refused(Uint8Array.of(0xff), 'unknown-opcode');
  refused(Uint8Array.of(0x01, 32, 0, 0, 0, 0, 0), 'register'); // mov r32, 0
  refused(Uint8Array.of(0x01, 0, 1, 40), 'register'); // mov r0, r40
  refused(Uint8Array.of(0x51, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 'object'); // draw #1024
  refused(Uint8Array.of(0x51, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 'object'); // draw #0
  refused(Uint8Array.of(0x41, 9), 'enum'); // clear with no such bits
  refused(Uint8Array.of(0x01, 0, 7, 0), 'tag');
});

void test('truncated commands and non-finite immediates are refused', () => {
  const good = assemble('translate 1 2 3');
  for (let n = 1; n < good.length; n++) refused(good.subarray(0, n), 'truncated');
  const nan = assemble('translate 1 2 3');
  new DataView(nan.buffer).setFloat32(2, NaN, true);
  refused(nan, 'not-finite');
});

void test('only redraw may clear or draw; update and input may not touch GL', () => {
  refused(assemble('clear color'), 'not-allowed', 'input');
  check(assemble('ext r0 pointer_x; mov r1 r0'), 'input');
  assert.throws(() => check(assemble('draw #1 triangles 0 3'), 'init'), /may not appear in init/);
  assert.throws(() => check(assemble('color 1 0 0 1'), 'update'), /may not appear in update/);
});

void test('immediate colours are clamped to [0, 1], and the clamp is reported', () => {
  const p = check(assemble('clear_color 2 -1 0.5 1'), 'redraw');
  assert.deepEqual(
    p.instrs[0].args.map((a) => (a.t === 'i' ? a.v : null)),
    [1, 0, 0.5, 1],
  );
  assert.equal(p.clamped.length, 2);
});

void test('a procedure over its length is refused', () => {
  refused(new Uint8Array(MAX_INSTRUCTIONS + 1), 'too-long');
  refused(new Uint8Array(70000), 'too-long');
});
