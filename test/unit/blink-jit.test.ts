// The JIT and the reference interpreter make the same GL calls, in the same
// order with the same arguments, on a recording context: for a gears-like scene
// over several frames and input events, and for random checked procedures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble } from '../../src/blink/asm.js';
import { check } from '../../src/blink/check.js';
import { Display, type ExecMode } from '../../src/blink/display.js';
import { compile, jitSource } from '../../src/blink/jit.js';
import { interpret } from '../../src/blink/interp.js';
import { EXTERNAL, ObjType, OPS, REGISTERS, type OpInfo } from '../../src/blink/ops.js';
import { GlRuntime } from '../../src/blink/runtime.js';
import { procData, type BlinkState } from '../../src/blink/wire.js';
import { lcg, recordingGl } from '../blink-fixtures.js';

const proc = (id: number, cb: 'init' | 'reshape' | 'redraw' | 'input', text: string) => ({
  id,
  type: ObjType.PROC,
  version: 1,
  data: procData(cb, assemble(text)),
});

const triangle = new Float32Array([
  0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1,
]);

const scene: BlinkState = {
  regs: [70, ...new Array<number>(REGISTERS - 1).fill(0)],
  updates: 0,
  objects: [
    proc(1, 'init', 'enable depth_test; enable lighting; light_dir 5 5 10; clear_color 0 0 0 1'),
    proc(
      2,
      'reshape',
      `ext r1 width; ext r2 height; viewport 0 0 r1 r2; div r3 r1 r2
      matrix_mode projection; load_identity; perspective 45 r3 1 100; matrix_mode modelview`,
    ),
    proc(
      3,
      'redraw',
      `clear color_depth; load_identity; translate 0 0 -20
       ext r4 time; mul r5 r4 r0          // angle = time * speed (9.1.7)
       push_matrix; rotate r5 0 0 1; color 0.8 0.1 0 1; draw #10 triangles 0 3; pop_matrix
       jlt r6 0.5 2                        // r6: set by input()
       color 0 0.8 0.2 1; draw #10 triangles 0 99
       push_matrix; translate 3 0 0; rotate r5 0 1 0; scale 2 2 2; draw #10 triangle_strip 1 r7; pop_matrix`,
    ),
    proc(4, 'input', 'ext r8 pointer_x; ext r9 width; div r6 r8 r9; mov r7 2'),
    { id: 10, type: ObjType.BUFFER, version: 1, data: new Uint8Array(triangle.buffer) },
  ],
};

function runScene(mode: ExecMode) {
  const { gl, calls } = recordingGl();
  let t = 0;
  const d = new Display(gl, mode, () => t);
  d.resize(0, 0, 512, 512);
  d.load(scene);
  for (let f = 0; f < 5; f++) {
    t += 0.016;
    if (f === 2) d.input({ kind: 1, x: 400, y: 10 });
    assert.ok(d.frame());
  }
  d.resize(10, 10, 300, 200);
  d.frame();
  return { calls, regs: Array.from(d.env.r) };
}

void test('JIT and interpreter: the same GL calls for a gears-like scene over frames and input', () => {
  const jit = runScene('jit');
  const interp = runScene('interp');
  assert.ok(jit.calls.filter((c) => c[0] === 'drawArrays').length >= 10);
  assert.deepEqual(jit.calls, interp.calls);
  assert.deepEqual(jit.regs, interp.regs);
});

void test('clamping at run time: a draw past the buffer is cut, a viewport stays in the window', () => {
  const { calls } = runScene('jit');
  const draws = calls.filter((c) => c[0] === 'drawArrays');
  for (const [, , first, count] of draws) assert.ok(Number(first) + Number(count) <= 3);
  const vps = calls.filter((c) => c[0] === 'viewport').map((c) => c.slice(1) as number[]);
  for (const [x, y, w, h] of vps) assert.ok(x >= 0 && y >= 0 && x + w <= 512 && y + h <= 512);
  assert.deepEqual(vps.at(-1), [10, 10, 300, 200]);
});

// Random checked procedures: every opcode, random operands, forward jumps.
function randomProc(rnd: () => number, n: number): Uint8Array {
  const ops = OPS.filter((o): o is OpInfo => o !== undefined);
  const text: string[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[Math.floor(rnd() * ops.length)];
    let e = 0;
    const args = [...op.args].map((k) => {
      const reg = `r${Math.floor(rnd() * REGISTERS)}`;
      if (k === 'r') return reg;
      if (k === 'v') return rnd() < 0.5 ? reg : String(Math.round((rnd() - 0.5) * 1000) / 10);
      if (k === 'e') {
        const list = op.enums![e++];
        return list[Math.floor(rnd() * list.length)];
      }
      if (k === 'o') return `#${1 + Math.floor(rnd() * 3)}`;
      return String(Math.floor(rnd() * (n - i)));
    });
    if (op.name === 'viewport') args.splice(0, 4, 'r1', 'r2', 'r3', 'r4');
    text.push(`${op.name} ${args.join(' ')}`);
  }
  return assemble(text.join('\n'));
}

void test('JIT and interpreter agree on 300 random checked procedures', () => {
  const rnd = lcg(7);
  for (let k = 0; k < 300; k++) {
    const p = check(randomProc(rnd, 5 + Math.floor(rnd() * 60)), 'redraw');
    const regs0 = Float64Array.from({ length: REGISTERS }, () => (rnd() - 0.5) * 100);
    const xs = Float64Array.from({ length: EXTERNAL.length }, () => rnd() * 500);
    const out = (['jit', 'interp'] as const).map((mode) => {
      const { gl, calls } = recordingGl();
      const rt = new GlRuntime(gl);
      rt.win = { x: 0, y: 0, w: 640, h: 480 };
      rt.setBuffer(1, new Uint8Array(triangle.buffer));
      const env = { r: Float64Array.from(regs0), x: xs, rt };
      if (mode === 'jit') compile(p)(env.r, env.x, rt, gl);
      else interpret(p, env);
      return { calls, r: Array.from(env.r) };
    });
    assert.deepEqual(out[0], out[1], jitSource(p));
  }
});
