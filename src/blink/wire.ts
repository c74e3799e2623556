// What a guest writes to /dev/blink, and what the viewer is sent. A guest's
// write() carries whole records (examples/blink.h writes each with one call):
//   u8 kind, u32 payload length, payload            (little-endian)
//   kind 1 OBJECT   u16 id, u8 type, u32 version, bytes   (a versioned shared object, 9.1.5)
//   kind 2 REGS     u8 first, f32 values...               (register updates)
//   kind 3 DELETE   u16 id
//   kind 4 UPDATE   (empty)                               (run the update() procedure)
// A procedure is an object of type PROC whose first byte is its callback (ops.ts
// CALLBACKS order) and the rest its BlinkGL. The parser takes hostile bytes.
import {
  BlinkRefusal,
  CALLBACKS,
  MAX_OBJECT_BYTES,
  MAX_OBJECTS,
  MAX_TEXTURE_SIDE,
  MAX_TOTAL_BYTES,
  ObjType,
  REGISTERS,
  type Callback,
} from './ops.js';

export const Rec = { OBJECT: 1, REGS: 2, DELETE: 3, UPDATE: 4 } as const;
const HEADER = 5;

export interface BlinkObject {
  id: number;
  type: number;
  version: number;
  data: Uint8Array;
}

export type BlinkRecord =
  | { kind: 'object'; obj: BlinkObject }
  | { kind: 'regs'; first: number; values: number[] }
  | { kind: 'delete'; id: number }
  | { kind: 'update' };

/** A VM's display state: everything the viewer needs to rebuild the display (9.1.8). */
export interface BlinkState {
  objects: BlinkObject[];
  regs: number[];
  /** update() requests so far (the viewer runs update() when it grows). */
  updates: number;
}

export const emptyState = (): BlinkState => ({
  objects: [],
  regs: new Array<number>(REGISTERS).fill(0),
  updates: 0,
});

/** Type-specific checks of an object's bytes (a procedure is checked in full when compiled). */
export function validateObject(o: BlinkObject): void {
  if (!Number.isInteger(o.id) || o.id < 1 || o.id >= MAX_OBJECTS)
    throw new BlinkRefusal('object', `object id ${o.id} is out of range (1-${MAX_OBJECTS - 1})`);
  if (!Number.isInteger(o.version) || o.version < 0 || o.version > 0xffffffff)
    throw new BlinkRefusal('object', `object #${o.id}: bad version ${o.version}`);
  if (o.data.length > MAX_OBJECT_BYTES)
    throw new BlinkRefusal('too-big', `object #${o.id} is over ${MAX_OBJECT_BYTES} bytes`);
  if (o.type === ObjType.PROC) {
    if (o.data.length < 1 || o.data[0] >= CALLBACKS.length)
      throw new BlinkRefusal('callback', `procedure #${o.id} names no callback`);
  } else if (o.type === ObjType.TEXTURE) {
    const d = o.data;
    const w = d.length >= 4 ? d[0] | (d[1] << 8) : 0,
      h = d.length >= 4 ? d[2] | (d[3] << 8) : 0;
    if (!w || !h || w > MAX_TEXTURE_SIDE || h > MAX_TEXTURE_SIDE || d.length !== 4 + w * h * 4)
      throw new BlinkRefusal('texture', `texture #${o.id}: size and bytes do not match`);
  } else if (o.type !== ObjType.BUFFER) {
    throw new BlinkRefusal('object', `object #${o.id}: unknown type ${o.type}`);
  }
}

/** A procedure object's callback and code. */
export function procOf(o: BlinkObject): { callback: Callback; code: Uint8Array } {
  return { callback: CALLBACKS[o.data[0]], code: o.data.subarray(1) };
}

function parseOne(kind: number, p: Uint8Array, at: number): BlinkRecord {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  switch (kind) {
    case Rec.OBJECT: {
      if (p.length < 7) throw new BlinkRefusal('record', 'short OBJECT record', at);
      const obj = {
        id: v.getUint16(0, true),
        type: p[2],
        version: v.getUint32(3, true),
        data: p.slice(7),
      };
      validateObject(obj);
      return { kind: 'object', obj };
    }
    case Rec.REGS: {
      const n = (p.length - 1) / 4;
      if (p.length < 1 || !Number.isInteger(n) || p[0] + n > REGISTERS)
        throw new BlinkRefusal('record', 'REGS record outside the registers', at);
      const values = Array.from({ length: n }, (_, i) => v.getFloat32(1 + i * 4, true));
      return { kind: 'regs', first: p[0], values };
    }
    case Rec.DELETE:
      if (p.length !== 2) throw new BlinkRefusal('record', 'DELETE record is not 2 bytes', at);
      return { kind: 'delete', id: v.getUint16(0, true) };
    case Rec.UPDATE:
      if (p.length !== 0) throw new BlinkRefusal('record', 'UPDATE record has a payload', at);
      return { kind: 'update' };
    default:
      throw new BlinkRefusal('record', `unknown record kind ${kind}`, at);
  }
}

/** Parses one write()'s worth of records; all or nothing (a bad one refuses the write). */
export function parseRecords(bytes: Uint8Array): BlinkRecord[] {
  const out: BlinkRecord[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < HEADER) throw new BlinkRefusal('record', 'truncated record header', at);
    const v = new DataView(bytes.buffer, bytes.byteOffset + at, HEADER);
    const len = v.getUint32(1, true);
    if (len > bytes.length - at - HEADER)
      throw new BlinkRefusal('record', 'record longer than the write', at);
    out.push(parseOne(v.getUint8(0), bytes.subarray(at + HEADER, at + HEADER + len), at));
    at += HEADER + len;
  }
  return out;
}

/** How many leading bytes of `bytes` are whole records (a reader of a growing log keeps the rest). */
export function wholeRecords(bytes: Uint8Array): number {
  let at = 0;
  while (bytes.length - at >= HEADER) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + at, HEADER).getUint32(1, true);
    if (len > bytes.length - at - HEADER) break;
    at += HEADER + len;
  }
  return at;
}

function header(kind: number, len: number): Uint8Array {
  const h = new Uint8Array(HEADER + len);
  h[0] = kind;
  new DataView(h.buffer).setUint32(1, len, true);
  return h;
}

export function objectRecord(o: BlinkObject): Uint8Array {
  const r = header(Rec.OBJECT, 7 + o.data.length);
  const v = new DataView(r.buffer);
  v.setUint16(HEADER, o.id, true);
  r[HEADER + 2] = o.type;
  v.setUint32(HEADER + 3, o.version, true);
  r.set(o.data, HEADER + 7);
  return r;
}

export function regsRecord(first: number, values: number[]): Uint8Array {
  const r = header(Rec.REGS, 1 + values.length * 4);
  r[HEADER] = first;
  const v = new DataView(r.buffer);
  values.forEach((x, i) => v.setFloat32(HEADER + 1 + i * 4, x, true));
  return r;
}

/** A procedure object's bytes: callback, then code. */
export function procData(callback: Callback, code: Uint8Array): Uint8Array {
  const d = new Uint8Array(1 + code.length);
  d[0] = CALLBACKS.indexOf(callback);
  d.set(code, 1);
  return d;
}

/** Applies a record to a state (the device's and the viewer server's view); true if it changed. */
export function applyRecord(s: BlinkState, r: BlinkRecord): boolean {
  if (r.kind === 'regs') r.values.forEach((x, i) => (s.regs[r.first + i] = x));
  else if (r.kind === 'update') s.updates++;
  else if (r.kind === 'delete') s.objects = s.objects.filter((o) => o.id !== r.id);
  else {
    const i = s.objects.findIndex((o) => o.id === r.obj.id);
    if (i >= 0 && s.objects[i].version >= r.obj.version) return false; // an older version
    const total =
      s.objects.reduce((n, o) => n + o.data.length, 0) - (i >= 0 ? s.objects[i].data.length : 0);
    if (total + r.obj.data.length > MAX_TOTAL_BYTES)
      throw new BlinkRefusal(
        'too-big',
        `a VM's objects are at most ${MAX_TOTAL_BYTES} bytes together`,
      );
    if (i >= 0) s.objects[i] = r.obj;
    else s.objects.push(r.obj);
  }
  return true;
}

const b64 = (d: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
  return btoa(s);
};
const unb64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export interface WireObject {
  id: number;
  type: number;
  version: number;
  data: string;
}
export const objToWire = (o: BlinkObject): WireObject => ({ ...o, data: b64(o.data) });

/** An object as the viewer received it (JSON, base64 bytes); validated again, since it came from a VM. */
export function objFromWire(w: unknown): BlinkObject {
  const o = w as Partial<WireObject> | null;
  if (!o || typeof o.data !== 'string' || typeof o.id !== 'number' || typeof o.type !== 'number')
    throw new BlinkRefusal('wire', 'malformed object');
  const obj = { id: o.id, type: o.type, version: Number(o.version), data: unb64(o.data) };
  validateObject(obj);
  return obj;
}
