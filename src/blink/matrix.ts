// 4x4 matrices, column-major as GL takes them, changed in place so that a frame
// allocates nothing: GL 1's matrix commands over WebGL2, which has none.
export type Mat4 = Float32Array;

const tmp = new Float32Array(16);

export function identity(m: Mat4): void {
  m.fill(0);
  m[0] = m[5] = m[10] = m[15] = 1;
}

/** m = m * t (t applied first, as glMultMatrix). */
function multiply(m: Mat4, t: Mat4): void {
  for (let c = 0; c < 4; c++)
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += m[k * 4 + r] * t[c * 4 + k];
      tmp[c * 4 + r] = s;
    }
  m.set(tmp);
}

const t2 = new Float32Array(16);

export function translate(m: Mat4, x: number, y: number, z: number): void {
  for (let r = 0; r < 4; r++) m[12 + r] += m[r] * x + m[4 + r] * y + m[8 + r] * z;
}

export function scale(m: Mat4, x: number, y: number, z: number): void {
  for (let r = 0; r < 4; r++) {
    m[r] *= x;
    m[4 + r] *= y;
    m[8 + r] *= z;
  }
}

/** glRotate: degrees about an axis; a zero axis leaves m as it was. */
export function rotate(m: Mat4, deg: number, x: number, y: number, z: number): void {
  const len = Math.hypot(x, y, z);
  if (!(len > 0) || !Number.isFinite(deg)) return;
  x /= len;
  y /= len;
  z /= len;
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a),
    s = Math.sin(a),
    k = 1 - c;
  identity(t2);
  t2[0] = x * x * k + c;
  t2[1] = y * x * k + z * s;
  t2[2] = x * z * k - y * s;
  t2[4] = x * y * k - z * s;
  t2[5] = y * y * k + c;
  t2[6] = y * z * k + x * s;
  t2[8] = x * z * k + y * s;
  t2[9] = y * z * k - x * s;
  t2[10] = z * z * k + c;
  multiply(m, t2);
}

/** gluPerspective; the caller has clamped its arguments to sane ranges. */
export function perspective(m: Mat4, fovy: number, aspect: number, near: number, far: number) {
  const f = 1 / Math.tan((fovy * Math.PI) / 360);
  t2.fill(0);
  t2[0] = f / aspect;
  t2[5] = f;
  t2[10] = (far + near) / (near - far);
  t2[11] = -1;
  t2[14] = (2 * far * near) / (near - far);
  multiply(m, t2);
}

export function ortho(m: Mat4, l: number, r: number, b: number, t: number, n: number, f: number) {
  identity(t2);
  t2[0] = 2 / (r - l);
  t2[5] = 2 / (t - b);
  t2[10] = -2 / (f - n);
  t2[12] = -(r + l) / (r - l);
  t2[13] = -(t + b) / (t - b);
  t2[14] = -(f + n) / (f - n);
  multiply(m, t2);
}
