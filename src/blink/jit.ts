// The JIT (thesis 9.1.3): a checked procedure compiled once to a JavaScript
// function that V8 then compiles to machine code, run every frame. It is built
// with `new Function` from the checker's decoded commands only, never from the
// guest's bytes: every piece of its source is either fixed text here, a register
// or enumerant index the checker bounded, or a finite number printed by
// String(). GL commands with no state of Blink's become direct WebGL calls; the
// rest call the runtime, which clamps what registers hold.
//
// Forward jumps only, so the code is straight-line blocks: a jump sets `s` to
// its target and each block after a jump or at a target runs only if `s` has not
// passed its start (s only grows, so each block runs at most once).
import type { Arg, CheckedProc } from './check.js';
import type { Env } from './interp.js';
import { c01, GL_CAPS, GL_CLEAR, type Gl, type GlRuntime } from './runtime.js';

export type Compiled = (r: Float64Array, x: Float64Array, rt: GlRuntime, gl: Gl) => void;

/** A finite number as JavaScript source (the checker refused NaN and infinities). */
function lit(v: number): string {
  if (!Number.isFinite(v)) throw new Error('jit: non-finite immediate (the checker refuses these)');
  return Object.is(v, -0) ? '-0' : String(v);
}

function idx(a: Arg): number {
  const n = a.t === 'r' || a.t === 'e' ? a.i : a.t === 'o' ? a.id : a.t === 'j' ? a.to : NaN;
  if (!Number.isInteger(n) || n < 0) throw new Error('jit: bad index');
  return n;
}

/** runtime.ts c01 inline: NaN to 0, then [0, 1]. */
const clamp01 = (v: string): string => `(${v} >= 0 ? (${v} <= 1 ? ${v} : 1) : 0)`;

const val = (a: Arg): string => (a.t === 'r' ? `r[${idx(a)}]` : a.t === 'i' ? lit(a.v) : '0');

const ARITH: Record<string, (a: string, b: string) => string> = {
  add: (a, b) => `${a} + ${b}`,
  sub: (a, b) => `${a} - ${b}`,
  mul: (a, b) => `${a} * ${b}`,
  div: (a, b) => `${b} === 0 ? 0 : ${a} / ${b}`,
  mod: (a, b) => `${b} === 0 ? 0 : ${a} % ${b}`,
  min: (a, b) => `Math.min(${a}, ${b})`,
  max: (a, b) => `Math.max(${a}, ${b})`,
};
const UNARY: Record<string, (a: string) => string> = {
  mov: (a) => a,
  sin: (a) => `Math.sin(${a})`,
  cos: (a) => `Math.cos(${a})`,
  floor: (a) => `Math.floor(${a})`,
  abs: (a) => `Math.abs(${a})`,
  sqrt: (a) => `${a} > 0 ? Math.sqrt(${a}) : 0`,
};
const CMP: Record<string, string> = { jlt: '<', jle: '<=', jeq: '===', jne: '!==' };
/** Runtime methods by command (the arguments are passed as they are). */
const RT: Record<string, string> = {
  viewport: 'viewport',
  matrix_mode: 'matrixMode',
  load_identity: 'loadIdentity',
  push_matrix: 'push',
  pop_matrix: 'pop',
  translate: 'translate',
  rotate: 'rotate',
  scale: 'scale',
  perspective: 'perspective',
  ortho: 'ortho',
  color: 'setColor',
  light_dir: 'lightDir',
  bind_texture: 'bindTexture',
  draw: 'draw',
};

/** One command as a statement. */
function emit(name: string, A: Arg[]): string {
  if (name === 'nop') return '';
  if (name in ARITH) return `r[${idx(A[0])}] = ${ARITH[name](val(A[1]), val(A[2]))};`;
  if (name in UNARY) return `r[${idx(A[0])}] = ${UNARY[name](val(A[1]))};`;
  if (name === 'jmp') return `s = ${idx(A[0])};`;
  if (name in CMP) return `if (${val(A[0])} ${CMP[name]} ${val(A[1])}) s = ${idx(A[2])};`;
  if (name === 'ext') return `r[${idx(A[0])}] = x[${idx(A[1])}];`;
  if (name === 'clear_color')
    // Immediates were clamped by the checker; registers are clamped inline here (as c01).
    return `gl.clearColor(${A.map((a) => (a.t === 'i' ? lit(a.v) : clamp01(val(a)))).join(', ')});`;
  if (name === 'clear') return `gl.clear(${GL_CLEAR[idx(A[0])]});`;
  if (name === 'enable' || name === 'disable') {
    const cap = GL_CAPS[idx(A[0])];
    return cap ? `gl.${name}(${cap});` : `rt.enable(${idx(A[0])}, ${name === 'enable'});`;
  }
  const m = RT[name];
  if (!m) throw new Error(`jit: no code for ${name}`);
  const args = A.map((a) => (a.t === 'r' || a.t === 'i' ? val(a) : String(idx(a))));
  return `rt.${m}(${args.join(', ')});`;
}

/** The function's source, for inspection and the tests. */
export function jitSource(p: CheckedProc): string {
  if (p.checked !== true) throw new Error('jit: only checked procedures are compiled');
  const starts = new Set(p.targets);
  p.instrs.forEach((ins, i) => {
    if (ins.args.some((a) => a.t === 'j')) starts.add(i + 1);
  });
  const out: string[] = [];
  if (starts.size > 0) out.push('let s = 0;');
  let open = false;
  p.instrs.forEach((ins, i) => {
    if (starts.has(i)) {
      if (open) out.push('}');
      out.push(`if (s <= ${i}) {`);
      open = true;
    }
    out.push(emit(ins.op.name, ins.args));
  });
  if (open) out.push('}');
  return out.join('\n');
}

/** Compiles a checked procedure once; call the result every frame. */
export function compile(p: CheckedProc): Compiled {
  const body = jitSource(p);
  // The JIT itself: source built above from checked commands only (see the top of this file).
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function(
    'c01',
    `"use strict"; return function blinkProc(r, x, rt, gl) {\n${body}\n};`,
  );
  return (make as (f: typeof c01) => Compiled)(c01);
}

/** Runs a compiled procedure against an environment. */
export const runCompiled = (f: Compiled, env: Env): void => f(env.r, env.x, env.rt, env.rt.gl);
