// The GL runtime compiled and interpreted procedures call: BlinkGL's GL 1-style
// state (matrix stacks, current colour, light, texture) over one WebGL2 shader,
// and the run-time half of the checker: every value that came from a register is
// clamped here, the viewport is clamped to the VM's window and a scissor keeps
// every clear and draw inside it, draws are clamped to the buffer's vertices, and
// objects are resolved by id (a missing or wrong-typed one draws nothing).
import * as M from './matrix.js';
import { MATRIX_DEPTH, MAX_TEXTURE_SIDE, VERTEX_BYTES } from './ops.js';

/** The part of WebGL2 that Blink uses (a recording context implements it in tests). */
export type Gl = Pick<
  WebGL2RenderingContext,
  | 'activeTexture'
  | 'attachShader'
  | 'bindBuffer'
  | 'bindTexture'
  | 'bindVertexArray'
  | 'blendFunc'
  | 'bufferData'
  | 'clear'
  | 'clearColor'
  | 'compileShader'
  | 'createBuffer'
  | 'createProgram'
  | 'createShader'
  | 'createTexture'
  | 'createVertexArray'
  | 'deleteBuffer'
  | 'deleteTexture'
  | 'deleteVertexArray'
  | 'disable'
  | 'drawArrays'
  | 'enable'
  | 'enableVertexAttribArray'
  | 'getProgramInfoLog'
  | 'getProgramParameter'
  | 'getShaderInfoLog'
  | 'getShaderParameter'
  | 'getUniformLocation'
  | 'linkProgram'
  | 'scissor'
  | 'shaderSource'
  | 'texImage2D'
  | 'texParameteri'
  | 'uniform1i'
  | 'uniform3f'
  | 'uniform4f'
  | 'uniformMatrix4fv'
  | 'useProgram'
  | 'vertexAttribPointer'
  | 'viewport'
>;

// GL's enumerants (fixed by the specification), so the runtime needs no context to name them.
export const GL = {
  DEPTH_BUFFER_BIT: 0x100,
  COLOR_BUFFER_BIT: 0x4000,
  DEPTH_TEST: 0x0b71,
  CULL_FACE: 0x0b44,
  BLEND: 0x0be2,
  SCISSOR_TEST: 0x0c11,
  ARRAY_BUFFER: 0x8892,
  STATIC_DRAW: 0x88e4,
  FLOAT: 0x1406,
  TEXTURE_2D: 0x0de1,
  TEXTURE0: 0x84c0,
  RGBA: 0x1908,
  UNSIGNED_BYTE: 0x1401,
  TEXTURE_MIN_FILTER: 0x2801,
  TEXTURE_MAG_FILTER: 0x2800,
  TEXTURE_WRAP_S: 0x2802,
  TEXTURE_WRAP_T: 0x2803,
  LINEAR: 0x2601,
  CLAMP_TO_EDGE: 0x812f,
  VERTEX_SHADER: 0x8b31,
  FRAGMENT_SHADER: 0x8b30,
  COMPILE_STATUS: 0x8b81,
  LINK_STATUS: 0x8b82,
  SRC_ALPHA: 0x0302,
  ONE_MINUS_SRC_ALPHA: 0x0303,
} as const;

/** BlinkGL's draw modes (ops.ts DRAW_MODES) as GL's. */
export const GL_DRAW_MODES = [4, 5, 6, 1, 3, 2, 0] as const;
/** clear's enumerants as GL bits. */
export const GL_CLEAR = [GL.COLOR_BUFFER_BIT, GL.DEPTH_BUFFER_BIT, 0x4100] as const;
/** enable/disable: GL capabilities, or 0 for the two the shader does (lighting, texture). */
export const GL_CAPS = [GL.DEPTH_TEST, GL.CULL_FACE, GL.BLEND, 0, 0] as const;

const VS = `#version 300 es
layout(location=0) in vec3 aPos; layout(location=1) in vec3 aNormal; layout(location=2) in vec2 aUv;
uniform mat4 uProj; uniform mat4 uModel; uniform vec4 uColor; uniform vec3 uLight; uniform int uLighting;
out vec4 vColor; out vec2 vUv;
void main() {
  gl_Position = uProj * uModel * vec4(aPos, 1.0);
  float l = 1.0;
  if (uLighting == 1) l = 0.25 + 0.75 * max(dot(normalize(mat3(uModel) * aNormal), normalize(uLight)), 0.0);
  vColor = vec4(uColor.rgb * l, uColor.a); vUv = aUv; gl_PointSize = 4.0;
}`;
const FS = `#version 300 es
precision mediump float;
in vec4 vColor; in vec2 vUv; uniform sampler2D uTex; uniform int uTexture; out vec4 outColor;
void main() { outColor = uTexture == 1 ? vColor * texture(uTex, vUv) : vColor; }`;

/** A number from a register made safe for GL: NaN and infinities become `d`, then clamped. */
export const clampNum = (x: number, lo: number, hi: number, d = lo): number =>
  x >= lo ? (x <= hi ? x : hi) : x < lo ? lo : d;
export const c01 = (x: number): number => clampNum(x, 0, 1, 0);

interface BufferObj {
  vao: WebGLVertexArrayObject | null;
  vbo: WebGLBuffer | null;
  vertices: number;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

type Loc = WebGLUniformLocation | null;

export class GlRuntime {
  /** The VM's window on the canvas, in pixels (GL origin, bottom left). */
  win: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private readonly stacks: M.Mat4[][];
  private readonly depth = [0, 0];
  private mode = 1;
  private readonly color = new Float32Array([1, 1, 1, 1]);
  private readonly light = new Float32Array([0, 0, 1]);
  private lighting = 0;
  private texturing = 0;
  private dirty = true;
  private readonly buffers = new Map<number, BufferObj>();
  private readonly textures = new Map<number, WebGLTexture | null>();
  private readonly loc: Record<string, Loc> = {};

  constructor(readonly gl: Gl) {
    this.stacks = [0, 1].map(() =>
      Array.from({ length: MATRIX_DEPTH }, () => new Float32Array(16)),
    );
    for (const s of this.stacks) for (const m of s) M.identity(m);
    this.program();
  }

  private shader(type: number, src: string): WebGLShader | null {
    const gl = this.gl;
    const s = gl.createShader(type);
    if (!s) return null;
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, GL.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s) ?? '');
    return s;
  }

  private program(): void {
    const gl = this.gl;
    const p = gl.createProgram();
    const vs = this.shader(GL.VERTEX_SHADER, VS);
    const fs = this.shader(GL.FRAGMENT_SHADER, FS);
    if (!p || !vs || !fs) return; // context lost: nothing will draw
    gl.attachShader(p, vs);
    gl.attachShader(p, fs);
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, GL.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p) ?? '');
    gl.useProgram(p);
    for (const u of ['uProj', 'uModel', 'uColor', 'uLight', 'uLighting', 'uTex', 'uTexture'])
      this.loc[u] = gl.getUniformLocation(p, u);
    gl.uniform1i(this.loc.uTex, 0);
    gl.activeTexture(GL.TEXTURE0);
    gl.blendFunc(GL.SRC_ALPHA, GL.ONE_MINUS_SRC_ALPHA);
  }

  /** Before each callback: GL state back to the window, so nothing leaks outside it. */
  begin(): void {
    const { x, y, w, h } = this.win;
    this.gl.enable(GL.SCISSOR_TEST);
    this.gl.scissor(x, y, w, h);
    this.gl.viewport(x, y, w, h);
  }

  private top(): M.Mat4 {
    return this.stacks[this.mode][this.depth[this.mode]];
  }

  clearColor(r: number, g: number, b: number, a: number): void {
    this.gl.clearColor(c01(r), c01(g), c01(b), c01(a));
  }
  clear(i: number): void {
    this.gl.clear(GL_CLEAR[i]);
  }
  viewport(x: number, y: number, w: number, h: number): void {
    const W = this.win.w,
      H = this.win.h;
    const cx = Math.floor(clampNum(x, 0, W)),
      cy = Math.floor(clampNum(y, 0, H));
    const cw = Math.floor(clampNum(w, 0, W - cx)),
      ch = Math.floor(clampNum(h, 0, H - cy));
    this.gl.viewport(this.win.x + cx, this.win.y + cy, cw, ch);
  }
  enable(i: number, on = true): void {
    if (i === 3) this.lighting = on ? 1 : 0;
    else if (i === 4) this.texturing = on ? 1 : 0;
    else if (on) this.gl.enable(GL_CAPS[i]);
    else this.gl.disable(GL_CAPS[i]);
    this.dirty ||= i >= 3;
  }
  matrixMode(i: number): void {
    this.mode = i === 0 ? 0 : 1;
  }
  loadIdentity(): void {
    M.identity(this.top());
    this.dirty = true;
  }
  push(): void {
    const d = this.depth[this.mode];
    if (d + 1 >= MATRIX_DEPTH) return; // overflow: ignored, as GL's stack error
    this.stacks[this.mode][d + 1].set(this.stacks[this.mode][d]);
    this.depth[this.mode] = d + 1;
  }
  pop(): void {
    if (this.depth[this.mode] > 0) this.depth[this.mode]--;
    this.dirty = true;
  }
  translate(x: number, y: number, z: number): void {
    M.translate(this.top(), fin(x), fin(y), fin(z));
    this.dirty = true;
  }
  rotate(deg: number, x: number, y: number, z: number): void {
    M.rotate(this.top(), fin(deg), fin(x), fin(y), fin(z));
    this.dirty = true;
  }
  scale(x: number, y: number, z: number): void {
    M.scale(this.top(), fin(x, 1), fin(y, 1), fin(z, 1));
    this.dirty = true;
  }
  perspective(fovy: number, aspect: number, near: number, far: number): void {
    const n = clampNum(near, 1e-3, 1e6, 1);
    M.perspective(
      this.top(),
      clampNum(fovy, 1, 179, 45),
      clampNum(aspect, 1e-3, 1e3, 1),
      n,
      clampNum(far, n * 1.0001, 1e7, n * 1000),
    );
    this.dirty = true;
  }
  ortho(l: number, r: number, b: number, t: number, n: number, f: number): void {
    [l, r, b, t, n, f] = [l, r, b, t, n, f].map((v) => clampNum(v, -1e7, 1e7, 0));
    if (l === r || b === t || n === f) return; // degenerate: GL's INVALID_VALUE, nothing changes
    M.ortho(this.top(), l, r, b, t, n, f);
    this.dirty = true;
  }
  setColor(r: number, g: number, b: number, a: number): void {
    this.color.set([c01(r), c01(g), c01(b), c01(a)]);
    this.dirty = true;
  }
  lightDir(x: number, y: number, z: number): void {
    this.light.set([fin(x), fin(y), fin(z, 1)]);
    this.dirty = true;
  }
  bindTexture(id: number): void {
    this.gl.bindTexture(GL.TEXTURE_2D, this.textures.get(id) ?? null);
  }

  private uniforms(): void {
    const gl = this.gl,
      L = this.loc;
    gl.uniformMatrix4fv(L.uProj, false, this.stacks[0][this.depth[0]]);
    gl.uniformMatrix4fv(L.uModel, false, this.stacks[1][this.depth[1]]);
    gl.uniform4f(L.uColor, this.color[0], this.color[1], this.color[2], this.color[3]);
    gl.uniform3f(L.uLight, this.light[0], this.light[1], this.light[2]);
    gl.uniform1i(L.uLighting, this.lighting);
    gl.uniform1i(L.uTexture, this.texturing);
    this.dirty = false;
  }

  draw(id: number, mode: number, first: number, count: number): void {
    const b = this.buffers.get(id);
    if (!b) return;
    const f = Math.floor(clampNum(first, 0, b.vertices));
    const n = Math.floor(clampNum(count, 0, b.vertices - f));
    if (n === 0) return;
    if (this.dirty) this.uniforms();
    this.gl.bindVertexArray(b.vao);
    this.gl.drawArrays(GL_DRAW_MODES[mode], f, n);
  }

  /** A buffer object's vertices (VERTEX_BYTES each; a ragged tail is dropped). */
  setBuffer(id: number, bytes: Uint8Array): void {
    this.drop(id);
    const gl = this.gl;
    const vertices = Math.floor(bytes.length / VERTEX_BYTES);
    const vao = gl.createVertexArray();
    const vbo = gl.createBuffer();
    gl.bindVertexArray(vao);
    gl.bindBuffer(GL.ARRAY_BUFFER, vbo);
    gl.bufferData(GL.ARRAY_BUFFER, bytes.subarray(0, vertices * VERTEX_BYTES), GL.STATIC_DRAW);
    for (const [i, n, off] of [
      [0, 3, 0],
      [1, 3, 12],
      [2, 2, 24],
    ]) {
      gl.enableVertexAttribArray(i);
      gl.vertexAttribPointer(i, n, GL.FLOAT, false, VERTEX_BYTES, off);
    }
    gl.bindVertexArray(null);
    this.buffers.set(id, { vao, vbo, vertices });
  }

  /** A texture object: u16 width, u16 height, then width*height RGBA bytes. */
  setTexture(id: number, bytes: Uint8Array): void {
    this.drop(id);
    if (bytes.length < 4) return;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const w = v.getUint16(0, true),
      h = v.getUint16(2, true);
    if (!w || !h || w > MAX_TEXTURE_SIDE || h > MAX_TEXTURE_SIDE) return;
    if (bytes.length < 4 + w * h * 4) return;
    const gl = this.gl;
    const tex = gl.createTexture();
    gl.bindTexture(GL.TEXTURE_2D, tex);
    const px = bytes.subarray(4, 4 + w * h * 4);
    gl.texImage2D(GL.TEXTURE_2D, 0, GL.RGBA, w, h, 0, GL.RGBA, GL.UNSIGNED_BYTE, px);
    for (const p of [GL.TEXTURE_MIN_FILTER, GL.TEXTURE_MAG_FILTER])
      gl.texParameteri(GL.TEXTURE_2D, p, GL.LINEAR);
    for (const p of [GL.TEXTURE_WRAP_S, GL.TEXTURE_WRAP_T])
      gl.texParameteri(GL.TEXTURE_2D, p, GL.CLAMP_TO_EDGE);
    gl.bindTexture(GL.TEXTURE_2D, null);
    this.textures.set(id, tex);
  }

  drop(id: number): void {
    const b = this.buffers.get(id);
    if (b) {
      this.gl.deleteVertexArray(b.vao);
      this.gl.deleteBuffer(b.vbo);
      this.buffers.delete(id);
    }
    if (this.textures.has(id)) {
      this.gl.deleteTexture(this.textures.get(id) ?? null);
      this.textures.delete(id);
    }
  }
}

/** A finite number, or `d`. */
const fin = (x: number, d = 0): number => (Number.isFinite(x) ? x : d);
