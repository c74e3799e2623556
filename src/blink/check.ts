// Program inspection (thesis 9.1.4): every stored procedure is decoded and
// checked before it is compiled or interpreted, and only what the checker returns
// is ever run. It parses hostile bytes (a guest wrote them), so it trusts no
// length or index in them. Refused: truncated commands, unknown opcodes, registers
// or objects out of range, enumerants BlinkGL does not have, non-finite numbers, a
// jump backwards (a loop) or past the end, a procedure over its size, a command
// the callback may not use (only redraw clears or draws), and a viewport outside
// any window. Clamped: immediate colours to [0, 1]; everything that comes from a
// register is clamped by the runtime when it runs, since its value is not known
// here.
import {
  ALLOWED,
  BlinkRefusal,
  MAX_INSTRUCTIONS,
  MAX_OBJECTS,
  MAX_PROC_BYTES,
  MAX_WINDOW,
  OPS,
  REGISTERS,
  type Callback,
  type OpInfo,
} from './ops.js';

export type Arg =
  | { t: 'r'; i: number }
  | { t: 'i'; v: number }
  | { t: 'e'; i: number }
  | { t: 'o'; id: number }
  | { t: 'j'; to: number };

export interface Instr {
  op: OpInfo;
  args: Arg[];
}

/** A procedure that passed the checker: the only form the JIT and the interpreter take. */
export interface CheckedProc {
  readonly callback: Callback;
  readonly instrs: readonly Instr[];
  /** Instruction indexes some jump lands on (the JIT's block starts). */
  readonly targets: ReadonlySet<number>;
  /** What the checker changed (clamped immediates), for the viewer to show. */
  readonly clamped: readonly string[];
  /** Whether it uses the depth buffer or blending (9.1.4's global optimisations). */
  readonly usesDepth: boolean;
  readonly checked: true;
}

class Reader {
  private readonly view: DataView;
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number): void {
    if (this.pos + n > this.bytes.length)
      throw new BlinkRefusal('truncated', 'the procedure ends inside a command', this.pos);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const x = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return x;
  }
  i16(): number {
    this.need(2);
    const x = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return x;
  }
  f32(): number {
    this.need(4);
    const x = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return x;
  }
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }
}

function register(rd: Reader): number {
  const at = rd.pos;
  const i = rd.u8();
  if (i >= REGISTERS)
    throw new BlinkRefusal('register', `register r${i} is out of range (r0-r${REGISTERS - 1})`, at);
  return i;
}

function readArg(rd: Reader, kind: string, op: OpInfo, enumIdx: number, index: number): Arg {
  const at = rd.pos;
  switch (kind) {
    case 'r':
      return { t: 'r', i: register(rd) };
    case 'v': {
      const tag = rd.u8();
      if (tag === 1) return { t: 'r', i: register(rd) };
      if (tag !== 0) throw new BlinkRefusal('tag', `operand tag ${tag} is neither 0 nor 1`, at);
      const v = rd.f32();
      if (!Number.isFinite(v)) throw new BlinkRefusal('not-finite', `${op.name}: ${v}`, at);
      return { t: 'i', v };
    }
    case 'e': {
      const i = rd.u8();
      const list = op.enums?.[enumIdx] ?? [];
      if (i >= list.length)
        throw new BlinkRefusal(
          'enum',
          `${op.name} has no enumerant ${i} (0-${list.length - 1})`,
          at,
        );
      return { t: 'e', i };
    }
    case 'o': {
      const id = rd.u16();
      if (id >= MAX_OBJECTS || (id === 0 && op.name === 'draw'))
        throw new BlinkRefusal('object', `${op.name}: object #${id} is out of range`, at);
      return { t: 'o', id };
    }
    default: {
      const n = rd.i16();
      if (n < 0)
        throw new BlinkRefusal('loop', `${op.name} jumps backwards: loops are refused`, at);
      return { t: 'j', to: index + 1 + n };
    }
  }
}

const clamp01 = (x: number): number => Math.min(1, Math.max(0, x));

/** Immediate-only rules: colours clamped, a viewport outside every window refused. */
function inspect(ins: Instr, at: number, clamped: string[]): void {
  const name = ins.op.name;
  if (name === 'clear_color' || name === 'color') {
    for (const a of ins.args)
      if (a.t === 'i' && clamp01(a.v) !== a.v) {
        clamped.push(`${name} ${a.v} -> ${clamp01(a.v)} (at byte ${at})`);
        a.v = clamp01(a.v);
      }
  } else if (name === 'viewport') {
    const [x, y, w, h] = ins.args.map((a) => (a.t === 'i' ? a.v : 0));
    if (x < 0 || y < 0 || w < 0 || h < 0 || x + w > MAX_WINDOW || y + h > MAX_WINDOW)
      throw new BlinkRefusal(
        'outside-window',
        `viewport ${x} ${y} ${w} ${h} draws outside its window`,
        at,
      );
  }
}

/** Decodes and checks one procedure for one callback; throws a BlinkRefusal saying why not. */
export function check(bytes: Uint8Array, callback: Callback): CheckedProc {
  if (bytes.length > MAX_PROC_BYTES)
    throw new BlinkRefusal('too-long', `a procedure is at most ${MAX_PROC_BYTES} bytes`);
  const rd = new Reader(bytes);
  const instrs: Instr[] = [];
  const clamped: string[] = [];
  const allowed = ALLOWED[callback];
  let usesDepth = false;
  while (!rd.done) {
    const at = rd.pos;
    if (instrs.length >= MAX_INSTRUCTIONS)
      throw new BlinkRefusal('too-long', `more than ${MAX_INSTRUCTIONS} commands`, at);
    const code = rd.u8();
    const op = OPS[code];
    if (!op) throw new BlinkRefusal('unknown-opcode', `opcode 0x${code.toString(16)}`, at);
    if (!allowed.includes(op.cls))
      throw new BlinkRefusal('not-allowed', `${op.name} may not appear in ${callback}()`, at);
    let e = 0;
    const args = [...op.args].map((k) => readArg(rd, k, op, k === 'e' ? e++ : 0, instrs.length));
    const ins = { op, args };
    inspect(ins, at, clamped);
    if ((op.name === 'enable' || op.name === 'clear') && args[0].t === 'e')
      usesDepth ||= op.name === 'enable' ? args[0].i === 0 : args[0].i !== 0;
    instrs.push(ins);
  }
  const targets = new Set<number>();
  for (const ins of instrs)
    for (const a of ins.args)
      if (a.t === 'j') {
        if (a.to > instrs.length)
          throw new BlinkRefusal('jump-outside', `${ins.op.name} jumps past the procedure's end`);
        targets.add(a.to);
      }
  return { callback, instrs, targets, clamped, usesDepth, checked: true };
}
