// An assembler for BlinkGL: text to the binary encoding a guest uploads. The
// guest's C header builds the same bytes; this one is for tests, the benchmark
// and hand-written procedures. One command a line (or separated by ';'):
//   mul r5 r0 70        registers rN, immediates as numbers
//   clear color_depth   enumerants by name
//   draw #3 triangles 0 r7   objects as #id
//   jlt r1 0 2          jumps: instructions to skip (forward)
// Anything after '//' is a comment.
import { BlinkRefusal, OP_BY_NAME } from './ops.js';

export class ProcWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private n = 0;

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(x: number): this {
    this.room(1);
    this.view.setUint8(this.n++, x);
    return this;
  }
  u16(x: number): this {
    this.room(2);
    this.view.setUint16(this.n, x, true);
    this.n += 2;
    return this;
  }
  i16(x: number): this {
    this.room(2);
    this.view.setInt16(this.n, x, true);
    this.n += 2;
    return this;
  }
  f32(x: number): this {
    this.room(4);
    this.view.setFloat32(this.n, x, true);
    this.n += 4;
    return this;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

const bad = (line: number, msg: string): BlinkRefusal =>
  new BlinkRefusal('asm', `line ${line + 1}: ${msg}`);

function reg(tok: string, line: number): number {
  const m = /^r(\d+)$/.exec(tok);
  if (!m) throw bad(line, `expected a register, got '${tok}'`);
  return Number(m[1]);
}

function operand(w: ProcWriter, kind: string, tok: string, enums: readonly string[], line: number) {
  switch (kind) {
    case 'r':
      w.u8(reg(tok, line));
      return;
    case 'v':
      if (tok.startsWith('r')) w.u8(1).u8(reg(tok, line));
      else if (tok !== '' && Number.isFinite(Number(tok))) w.u8(0).f32(Number(tok));
      else throw bad(line, `expected a number or register, got '${tok}'`);
      return;
    case 'e': {
      const i = enums.indexOf(tok);
      if (i < 0) throw bad(line, `'${tok}' is not one of ${enums.join(', ')}`);
      w.u8(i);
      return;
    }
    case 'o':
      if (!/^#\d+$/.test(tok)) throw bad(line, `expected an object #id, got '${tok}'`);
      w.u16(Number(tok.slice(1)));
      return;
    default:
      if (!/^[+-]?\d+$/.test(tok)) throw bad(line, `expected a jump count, got '${tok}'`);
      w.i16(Number(tok));
  }
}

/** Assembles BlinkGL text; throws a BlinkRefusal naming the line of a mistake. */
export function assemble(text: string): Uint8Array {
  const w = new ProcWriter();
  const lines = text.split(/\n|;/);
  for (const [i, raw] of lines.entries()) {
    const toks = raw
      .replace(/\/\/.*$/, '')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    if (toks.length === 0) continue;
    const info = OP_BY_NAME.get(toks[0]);
    if (!info) throw bad(i, `unknown command '${toks[0]}'`);
    if (toks.length - 1 !== info.args.length)
      throw bad(i, `${info.name} takes ${info.args.length} operands, got ${toks.length - 1}`);
    w.u8(info.code);
    let e = 0;
    for (const [k, kind] of [...info.args].entries())
      operand(w, kind, toks[k + 1], kind === 'e' ? (info.enums?.[e++] ?? []) : [], i);
  }
  return w.bytes();
}
