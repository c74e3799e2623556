// BlinkGL (thesis 9.1.3): the opcode table. A stored procedure is a sequence of
// serialised commands, each an opcode byte and its operands. Part of the opcode
// space is register copying, arithmetic and conditional forward jumps; the rest
// are GL commands, a superset of what a 2-D/3-D program needs from GL, laid over
// WebGL2 by the viewer's runtime (fixed-function matrices and colour on a shader).
//
// Operand kinds, each with its own encoding (little-endian):
//   r  destination register: u8, < REGISTERS
//   v  value: u8 tag, then tag 0: f32 immediate, tag 1: u8 register
//   e  enumerant: u8 index into the opcode's own list
//   o  object id: u16, < MAX_OBJECTS (0 means none where the opcode allows it)
//   j  jump: i16 count of instructions to skip (the checker refuses a negative one)
import { RoamError } from '../util/errors.js';

export const REGISTERS = 32;
export const MAX_OBJECTS = 1024;
/** A procedure's size and length (no loops, so this bounds its running time too). */
export const MAX_PROC_BYTES = 64 * 1024;
export const MAX_INSTRUCTIONS = 8192;
/** Window coordinates beyond this are outside any window a viewer gives. */
export const MAX_WINDOW = 8192;
export const MATRIX_DEPTH = 32;

/** Table 9.1: the client's stored procedures and when the viewer runs them. */
export const CALLBACKS = ['init', 'update', 'reshape', 'redraw', 'input'] as const;
export type Callback = (typeof CALLBACKS)[number];

/** What an opcode may do, and so in which callbacks it may appear (9.1.4). */
export type OpClass = 'reg' | 'gl' | 'draw';

/** The classes each callback may use: only redraw clears or draws the screen. */
export const ALLOWED: Readonly<Record<Callback, readonly OpClass[]>> = {
  init: ['reg', 'gl'],
  update: ['reg'],
  reshape: ['reg', 'gl'],
  redraw: ['reg', 'gl', 'draw'],
  input: ['reg'],
};

/** External state a procedure may read into a register (EXT). */
export const EXTERNAL = [
  'time', // seconds since the viewer started (a float)
  'frame', // frames drawn since the viewer started
  'pointer_x', // pointer in window coordinates (origin bottom left, as GL)
  'pointer_y',
  'buttons', // pointer buttons held, a bit each
  'key', // the last key code pressed
  'width', // the window's size in pixels
  'height',
  'event', // the input event being handled: 0 none, 1 move, 2 down, 3 up, 4 key down, 5 key up
] as const;

export const CLEAR_BITS = ['color', 'depth', 'color_depth'] as const;
export const CAPS = ['depth_test', 'cull_face', 'blend', 'lighting', 'texture'] as const;
export const MATRIX_MODES = ['projection', 'modelview'] as const;
export const DRAW_MODES = [
  'triangles',
  'triangle_strip',
  'triangle_fan',
  'lines',
  'line_strip',
  'line_loop',
  'points',
] as const;

export interface OpInfo {
  code: number;
  name: string;
  /** Operand kinds in order, one letter each (see the top of this file). */
  args: string;
  cls: OpClass;
  /** For each 'e' operand, its enumerants. */
  enums?: readonly (readonly string[])[];
}

const table: OpInfo[] = [];
const op = (code: number, name: string, args: string, cls: OpClass, enums?: string[][]): void => {
  table.push({ code, name, args, cls, enums });
};

op(0x00, 'nop', '', 'reg');
op(0x01, 'mov', 'rv', 'reg');
for (const [i, n] of ['add', 'sub', 'mul', 'div', 'mod', 'min', 'max'].entries())
  op(0x02 + i, n, 'rvv', 'reg');
for (const [i, n] of ['sin', 'cos', 'floor', 'abs', 'sqrt'].entries()) op(0x09 + i, n, 'rv', 'reg');
op(0x10, 'jmp', 'j', 'reg');
for (const [i, n] of ['jlt', 'jle', 'jeq', 'jne'].entries()) op(0x11 + i, n, 'vvj', 'reg');
op(0x18, 'ext', 're', 'reg', [[...EXTERNAL]]);

op(0x40, 'clear_color', 'vvvv', 'gl');
op(0x41, 'clear', 'e', 'draw', [[...CLEAR_BITS]]);
op(0x42, 'viewport', 'vvvv', 'gl');
op(0x43, 'enable', 'e', 'gl', [[...CAPS]]);
op(0x44, 'disable', 'e', 'gl', [[...CAPS]]);
op(0x45, 'matrix_mode', 'e', 'gl', [[...MATRIX_MODES]]);
op(0x46, 'load_identity', '', 'gl');
op(0x47, 'push_matrix', '', 'gl');
op(0x48, 'pop_matrix', '', 'gl');
op(0x49, 'translate', 'vvv', 'gl');
op(0x4a, 'rotate', 'vvvv', 'gl');
op(0x4b, 'scale', 'vvv', 'gl');
op(0x4c, 'perspective', 'vvvv', 'gl');
op(0x4d, 'ortho', 'vvvvvv', 'gl');
op(0x4e, 'color', 'vvvv', 'gl');
op(0x4f, 'light_dir', 'vvv', 'gl');
op(0x50, 'bind_texture', 'o', 'gl');
op(0x51, 'draw', 'oevv', 'draw', [[...DRAW_MODES]]);

/** Opcode byte to its description; undefined for an opcode BlinkGL does not have. */
export const OPS: readonly (OpInfo | undefined)[] = (() => {
  const byCode: (OpInfo | undefined)[] = new Array<OpInfo | undefined>(256).fill(undefined);
  for (const o of table) byCode[o.code] = o;
  return byCode;
})();

export const OP_BY_NAME: ReadonlyMap<string, OpInfo> = new Map(table.map((o) => [o.name, o]));

/** Types of versioned shared objects (9.1.5). */
export const ObjType = { PROC: 1, BUFFER: 2, TEXTURE: 3 } as const;
export type ObjTypeCode = (typeof ObjType)[keyof typeof ObjType];

/** A buffer's vertex: position (3), normal (3), texture coordinate (2), as f32. */
export const VERTEX_FLOATS = 8;
export const VERTEX_BYTES = VERTEX_FLOATS * 4;
export const MAX_TEXTURE_SIDE = 2048;
/** One object's bytes, and all of a VM's objects together. */
export const MAX_OBJECT_BYTES = 4 << 20;
export const MAX_TOTAL_BYTES = 64 << 20;

/** A procedure, object or record Blink will not take; `code` says which rule it broke. */
export class BlinkRefusal extends RoamError {
  constructor(
    code: string,
    message: string,
    readonly at?: number,
  ) {
    super(`blink-${code}`, at === undefined ? message : `${message} (at byte ${at})`);
  }
}
