// The reference interpreter of checked BlinkGL: a plain switch over the checker's
// decoded commands. The JIT must do exactly what this does (the unit tests compare
// their GL calls on a recording context); the benchmark measures both.
import type { Arg, CheckedProc } from './check.js';
import type { GlRuntime } from './runtime.js';

/** What a procedure runs against: its VM's registers, the external state, the GL runtime. */
export interface Env {
  /** The 32 virtual registers (persist between calls; the guest may set them). */
  r: Float64Array;
  /** External state, indexed as ops.ts EXTERNAL. */
  x: Float64Array;
  rt: GlRuntime;
}

export function interpret(p: CheckedProc, env: Env): void {
  const { r, x, rt } = env;
  const v = (a: Arg): number => (a.t === 'r' ? r[a.i] : a.t === 'i' ? a.v : 0);
  const n = (a: Arg): number => (a.t === 'e' ? a.i : a.t === 'o' ? a.id : a.t === 'j' ? a.to : 0);
  const d = (a: Arg): number => (a.t === 'r' ? a.i : 0);
  const ins = p.instrs;
  let pc = 0;
  while (pc < ins.length) {
    const { op, args: A } = ins[pc++];
    switch (op.name) {
      case 'nop':
        break;
      case 'mov':
        r[d(A[0])] = v(A[1]);
        break;
      case 'add':
        r[d(A[0])] = v(A[1]) + v(A[2]);
        break;
      case 'sub':
        r[d(A[0])] = v(A[1]) - v(A[2]);
        break;
      case 'mul':
        r[d(A[0])] = v(A[1]) * v(A[2]);
        break;
      case 'div':
        r[d(A[0])] = v(A[2]) === 0 ? 0 : v(A[1]) / v(A[2]);
        break;
      case 'mod':
        r[d(A[0])] = v(A[2]) === 0 ? 0 : v(A[1]) % v(A[2]);
        break;
      case 'min':
        r[d(A[0])] = Math.min(v(A[1]), v(A[2]));
        break;
      case 'max':
        r[d(A[0])] = Math.max(v(A[1]), v(A[2]));
        break;
      case 'sin':
        r[d(A[0])] = Math.sin(v(A[1]));
        break;
      case 'cos':
        r[d(A[0])] = Math.cos(v(A[1]));
        break;
      case 'floor':
        r[d(A[0])] = Math.floor(v(A[1]));
        break;
      case 'abs':
        r[d(A[0])] = Math.abs(v(A[1]));
        break;
      case 'sqrt':
        r[d(A[0])] = v(A[1]) > 0 ? Math.sqrt(v(A[1])) : 0;
        break;
      case 'jmp':
        pc = n(A[0]);
        break;
      case 'jlt':
        if (v(A[0]) < v(A[1])) pc = n(A[2]);
        break;
      case 'jle':
        if (v(A[0]) <= v(A[1])) pc = n(A[2]);
        break;
      case 'jeq':
        if (v(A[0]) === v(A[1])) pc = n(A[2]);
        break;
      case 'jne':
        if (v(A[0]) !== v(A[1])) pc = n(A[2]);
        break;
      case 'ext':
        r[d(A[0])] = x[n(A[1])];
        break;
      default:
        gl(op.name, A, v, n, rt);
    }
  }
}

function gl(
  name: string,
  A: Arg[],
  v: (a: Arg) => number,
  n: (a: Arg) => number,
  rt: GlRuntime,
): void {
  switch (name) {
    case 'clear_color':
      return rt.clearColor(v(A[0]), v(A[1]), v(A[2]), v(A[3]));
    case 'clear':
      return rt.clear(n(A[0]));
    case 'viewport':
      return rt.viewport(v(A[0]), v(A[1]), v(A[2]), v(A[3]));
    case 'enable':
    case 'disable':
      return rt.enable(n(A[0]), name === 'enable');
    case 'matrix_mode':
      return rt.matrixMode(n(A[0]));
    case 'load_identity':
      return rt.loadIdentity();
    case 'push_matrix':
      return rt.push();
    case 'pop_matrix':
      return rt.pop();
    case 'translate':
      return rt.translate(v(A[0]), v(A[1]), v(A[2]));
    case 'rotate':
      return rt.rotate(v(A[0]), v(A[1]), v(A[2]), v(A[3]));
    case 'scale':
      return rt.scale(v(A[0]), v(A[1]), v(A[2]));
    case 'perspective':
      return rt.perspective(v(A[0]), v(A[1]), v(A[2]), v(A[3]));
    case 'ortho':
      return rt.ortho(v(A[0]), v(A[1]), v(A[2]), v(A[3]), v(A[4]), v(A[5]));
    case 'color':
      return rt.setColor(v(A[0]), v(A[1]), v(A[2]), v(A[3]));
    case 'light_dir':
      return rt.lightDir(v(A[0]), v(A[1]), v(A[2]));
    case 'bind_texture':
      return rt.bindTexture(n(A[0]));
    case 'draw':
      return rt.draw(n(A[0]), n(A[1]), v(A[2]), v(A[3]));
  }
}
