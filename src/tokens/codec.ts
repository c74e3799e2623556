// One table-driven binary codec for every token, certificate and datagram, so
// that encoding and decoding cannot drift apart and every bound is checked in
// one place. Integers are big-endian; `str` is a u8 length + printable ASCII;
// a number is a fixed-length byte field; `rest` takes the remaining bytes.
import type { Parsed } from './reasons.js';

export type Kind = 'u8' | 'u16' | 'u32' | 'str' | 'rest' | number;
export type Layout = readonly (readonly [string, Kind])[];
type Val<K> = K extends 'u8' | 'u16' | 'u32' ? number : K extends 'str' ? string : Buffer;
export type Rec<L extends Layout> = { [F in L[number] as F[0]]: Val<F[1]> };

const INT = { u8: 1, u16: 2, u32: 4 } as const;
const PRINTABLE = /^[\x21-\x7e]*$/;

export function encode<L extends Layout>(layout: L, rec: Rec<L>): Buffer {
  return Buffer.concat(
    layout.map(([name, kind]) => {
      const v = (rec as Record<string, unknown>)[name];
      if (kind === 'u8' || kind === 'u16' || kind === 'u32') {
        const b = Buffer.alloc(INT[kind]);
        b.writeUIntBE(v as number, 0, INT[kind]); // throws RangeError on bad input: a caller bug
        return b;
      }
      if (kind === 'str' && (typeof v !== 'string' || v.length > 255 || !PRINTABLE.test(v)))
        throw new RangeError(`${name}: not a short printable string`);
      if (kind === 'str')
        return Buffer.concat([
          Buffer.from([(v as string).length]),
          Buffer.from(v as string, 'latin1'),
        ]);
      if (kind !== 'rest' && (v as Buffer).length !== kind)
        throw new RangeError(`${name}: expected ${kind} bytes`);
      return v as Buffer;
    }),
  );
}

// Decodes exactly `buf` (trailing bytes are malformed); never throws.
export function decode<L extends Layout>(layout: L, buf: Buffer): Parsed<Rec<L>> {
  const out: Record<string, unknown> = {};
  let at = 0;
  for (const [name, kind] of layout) {
    if (kind === 'u8' || kind === 'u16' || kind === 'u32') {
      if (at + INT[kind] > buf.length) return { ok: false, reason: 'truncated' };
      out[name] = buf.readUIntBE(at, INT[kind]);
      at += INT[kind];
    } else if (kind === 'str') {
      if (at + 1 > buf.length || at + 1 + buf[at] > buf.length)
        return { ok: false, reason: 'truncated' };
      const s = buf.toString('latin1', at + 1, at + 1 + buf[at]);
      if (!PRINTABLE.test(s)) return { ok: false, reason: 'malformed' };
      out[name] = s;
      at += 1 + buf[at];
    } else {
      const end = kind === 'rest' ? buf.length : at + kind;
      if (end > buf.length) return { ok: false, reason: 'truncated' };
      out[name] = Buffer.from(buf.subarray(at, end)); // a copy: callers keep fields past the datagram
      at = end;
    }
  }
  if (at !== buf.length) return { ok: false, reason: 'malformed' };
  return { ok: true, value: out as Rec<L> };
}
