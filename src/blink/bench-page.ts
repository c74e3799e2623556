// In the browser, for bench/blink.ts: the gears drawn three ways on one WebGL2
// context (thesis Table 9.4): the VM's procedures compiled by the JIT, the same
// procedures interpreted, and plain hand-written WebGL2 of the same scene (the
// same buffers and shader, with the matrices and calls written out by hand); and
// the cost of one GL call made by JIT-compiled code against a direct call (Table
// 9.3). Each frame ends with a one-pixel readPixels, so the frame is finished.
import { check } from './check.js';
import { Display, type ExecMode } from './display.js';
import { compile } from './jit.js';
import * as M from './matrix.js';
import { assemble } from './asm.js';
import { EXTERNAL, REGISTERS, VERTEX_BYTES } from './ops.js';
import { GL, GlRuntime } from './runtime.js';
import type { BlinkState } from './wire.js';

const px = new Uint8Array(4);
const finish = (gl: WebGL2RenderingContext) =>
  gl.readPixels(0, 0, 1, 1, GL.RGBA, GL.UNSIGNED_BYTE, px);

/** The gears of examples/gears.c, as a programmer would write them against WebGL2. */
function nativeGears(gl: WebGL2RenderingContext, s: BlinkState): (t: number) => void {
  new GlRuntime(gl); // for its shader program only: the same GLSL as the others
  const prog = gl.getParameter(gl.CURRENT_PROGRAM) as WebGLProgram;
  const u = (n: string) => gl.getUniformLocation(prog, n);
  const [uProj, uModel, uColor, uLight, uLighting, uTexture] = [
    'uProj',
    'uModel',
    'uColor',
    'uLight',
    'uLighting',
    'uTexture',
  ].map(u);
  const gears = [10, 11, 12].map((id) => {
    const o = s.objects.find((x) => x.id === id)!;
    const vao = gl.createVertexArray();
    gl.bindVertexArray(vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, o.data, gl.STATIC_DRAW);
    for (const [i, n, off] of [
      [0, 3, 0],
      [1, 3, 12],
      [2, 2, 24],
    ]) {
      gl.enableVertexAttribArray(i);
      gl.vertexAttribPointer(i, n, gl.FLOAT, false, VERTEX_BYTES, off);
    }
    return { vao, count: o.data.length / VERTEX_BYTES };
  });
  const place = [
    [-3, -2, 0.8, 0.1, 0],
    [3.1, -2, 0, 0.8, 0.2],
    [-3.1, 4.2, 0.2, 0.2, 1],
  ];
  const proj = new Float32Array(16),
    view = new Float32Array(16),
    model = new Float32Array(16);
  const [W, H] = [gl.canvas.width, gl.canvas.height];
  return (t: number) => {
    gl.viewport(0, 0, W, H);
    gl.enable(gl.DEPTH_TEST);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    M.identity(proj);
    M.perspective(proj, 22.6, W / H, 5, 60);
    gl.uniformMatrix4fv(uProj, false, proj);
    gl.uniform3f(uLight, 5, 5, 10);
    gl.uniform1i(uLighting, 1);
    gl.uniform1i(uTexture, 0);
    M.identity(view);
    M.translate(view, 0, 0, -40);
    M.rotate(view, s.regs[1], 1, 0, 0);
    M.rotate(view, s.regs[2], 0, 1, 0);
    const a = t * s.regs[0];
    const angles = [a, -2 * a - 9, -2 * a - 25];
    gears.forEach((g, i) => {
      model.set(view);
      M.translate(model, place[i][0], place[i][1], 0);
      M.rotate(model, angles[i], 0, 0, 1);
      gl.uniformMatrix4fv(uModel, false, model);
      gl.uniform4f(uColor, place[i][2], place[i][3], place[i][4], 1);
      gl.bindVertexArray(g.vao);
      gl.drawArrays(gl.TRIANGLES, 0, g.count);
    });
  };
}

export type Way = ExecMode | 'native';

/** Frames per second of `frames` frames drawn back to back one way. */
export function fps(gl: WebGL2RenderingContext, s: BlinkState, way: Way, frames: number): number {
  let frame: () => void;
  let t = 0;
  if (way === 'native') {
    const f = nativeGears(gl, s);
    frame = () => f((t += 1 / 60));
  } else {
    const d = new Display(gl, way, () => (t += 1 / 60));
    d.resize(0, 0, gl.canvas.width, gl.canvas.height);
    d.load(s);
    frame = () => void d.frame();
  }
  for (let i = 0; i < 5; i++) frame(); // warm up: compile, first draws
  finish(gl);
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    frame();
    finish(gl);
  }
  return (frames * 1000) / (performance.now() - t0);
}

/** Nanoseconds per gl.clearColor: direct calls, and from a JIT-compiled procedure of them. */
export function perCall(gl: WebGL2RenderingContext, calls: number, reps: number) {
  const rt = new GlRuntime(gl);
  const env = { r: new Float64Array(REGISTERS), x: new Float64Array(EXTERNAL.length), rt };
  env.r.set([0.1, 0.2, 0.3, 1]);
  const regs = compile(check(assemble('clear_color r0 r1 r2 r3\n'.repeat(calls)), 'redraw'));
  const imm = compile(check(assemble('clear_color 0.1 0.2 0.3 1\n'.repeat(calls)), 'redraw'));
  const r = env.r;
  const direct = () => {
    for (let i = 0; i < calls; i++) gl.clearColor(r[0], r[1], r[2], r[3]);
  };
  const time = (f: () => void): number => {
    for (let i = 0; i < 300; i++) f(); // to V8's optimising tier
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    return ((performance.now() - t0) * 1e6) / (reps * calls);
  };
  const out = {
    direct: [] as number[],
    jitRegisters: [] as number[],
    jitImmediates: [] as number[],
  };
  for (let k = 0; k < 5; k++) {
    out.direct.push(time(direct));
    out.jitRegisters.push(time(() => regs(env.r, env.x, rt, gl)));
    out.jitImmediates.push(time(() => imm(env.r, env.x, rt, gl)));
  }
  return out;
}
