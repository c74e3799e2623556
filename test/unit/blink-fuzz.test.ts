// Fuzzing the two decoders that parse a guest's bytes: the procedure checker and
// the /dev/blink record parser. Whatever the bytes, they either refuse with a
// BlinkRefusal or return something that compiles and runs without throwing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { assemble } from '../../src/blink/asm.js';
import { check } from '../../src/blink/check.js';
import { compile } from '../../src/blink/jit.js';
import { interpret } from '../../src/blink/interp.js';
import { BlinkRefusal, CALLBACKS, EXTERNAL, ObjType, REGISTERS } from '../../src/blink/ops.js';
import { GlRuntime } from '../../src/blink/runtime.js';
import {
  emptyState,
  applyRecord,
  objectRecord,
  parseRecords,
  procData,
  regsRecord,
} from '../../src/blink/wire.js';
import { lcg, recordingGl } from '../blink-fixtures.js';

const seed = assemble(`ext r0 time; mul r1 r0 70; jlt r1 10 3; clear color_depth; viewport 0 0 r2 r3
  push_matrix; rotate r1 0 0 1; draw #1 triangles 0 r4; pop_matrix; bind_texture #2; ortho -1 1 -1 1 -1 1`);

function mutate(rnd: () => number, b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256);
  return rnd() < 0.2 ? out.subarray(0, Math.floor(rnd() * out.length)) : out;
}

function runChecked(bytes: Uint8Array, rnd: () => number): 'ok' | 'refused' {
  const cb = CALLBACKS[Math.floor(rnd() * CALLBACKS.length)];
  let p;
  try {
    p = check(bytes, cb);
  } catch (e) {
    assert.ok(e instanceof BlinkRefusal, `not a refusal: ${String(e)}`);
    return 'refused';
  }
  const { gl } = recordingGl();
  const rt = new GlRuntime(gl);
  const env = { r: new Float64Array(REGISTERS), x: new Float64Array(EXTERNAL.length), rt };
  compile(p)(env.r, env.x, rt, gl);
  interpret(p, env);
  return 'ok';
}

void test('checker fuzz: 20,000 mutated and random procedures refuse cleanly or run', () => {
  const rnd = lcg(42);
  const seen = { ok: 0, refused: 0 };
  for (let i = 0; i < 20000; i++) {
    const bytes = i % 4 === 0 ? randomBytes(Math.floor(rnd() * 64)) : mutate(rnd, seed);
    seen[runChecked(bytes, rnd)]++;
  }
  assert.ok(seen.ok > 100 && seen.refused > 100, JSON.stringify(seen));
});

void test('record parser fuzz: mutated and random writes refuse cleanly or apply', () => {
  const rnd = lcg(9);
  const good = new Uint8Array([
    ...objectRecord({ id: 3, type: ObjType.PROC, version: 2, data: procData('redraw', seed) }),
    ...regsRecord(4, [1, 2, 3]),
    ...objectRecord({
      id: 5,
      type: ObjType.TEXTURE,
      version: 1,
      data: Uint8Array.of(1, 0, 1, 0, 9, 9, 9, 9),
    }),
  ]);
  let applied = 0;
  for (let i = 0; i < 20000; i++) {
    const bytes = i % 4 === 0 ? randomBytes(Math.floor(rnd() * 40)) : mutate(rnd, good);
    const s = emptyState();
    try {
      for (const r of parseRecords(bytes)) applyRecord(s, r);
      applied++;
    } catch (e) {
      assert.ok(e instanceof BlinkRefusal, `not a refusal: ${String(e)}`);
    }
    assert.equal(s.regs.length, REGISTERS);
  }
  assert.ok(applied > 10);
});

void test('records: an older version of an object does not replace a newer one', () => {
  const s = emptyState();
  const rec = (version: number, b: number) =>
    parseRecords(objectRecord({ id: 7, type: ObjType.BUFFER, version, data: Uint8Array.of(b) }))[0];
  assert.ok(applyRecord(s, rec(2, 1)));
  assert.equal(applyRecord(s, rec(1, 2)), false);
  assert.deepEqual(Array.from(s.objects[0].data), [1]);
  assert.throws(() => parseRecords(regsRecord(30, [1, 2, 3])), /outside the registers/);
});
