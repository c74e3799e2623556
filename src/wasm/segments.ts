// Where a module's active data segments land in memory 0. Instantiating a module
// writes them, so a process restored into a memory that already holds its pages
// (a migration's prebuilt memory) must put back what they covered — and only
// that: copying the whole initial memory around instantiation cost milliseconds
// of downtime for a program with a large static world.
//
// Read from the original module: preparing it (Binaryen) keeps every active
// segment's bytes where they were, possibly split, never elsewhere.

/** [start, end) byte ranges, or null when an offset is not a plain constant (use the whole initial memory). */
export type SegmentRanges = Array<[number, number]> | null;

/** What instantiating a module does besides creating it. */
export interface InstantiationEffects {
  ranges: SegmentRanges;
  /** It has a start function, which runs at every instantiation. */
  start: boolean;
}

const cache = new WeakMap<Uint8Array, InstantiationEffects>();

class Reader {
  at = 0;
  constructor(readonly b: Uint8Array) {}
  byte(): number {
    if (this.at >= this.b.length) throw new Error('truncated');
    return this.b[this.at++];
  }
  u32(): number {
    let result = 0,
      shift = 0,
      byte: number;
    do {
      byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  }
  /** A signed LEB128 i32 (an i32.const immediate). */
  i32(): number {
    let result = 0,
      shift = 0,
      byte: number;
    do {
      byte = this.byte();
      result |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80 && shift < 35);
    if (shift < 32 && byte & 0x40) result |= -1 << shift;
    return result;
  }
}

/** The active data segments' ranges in memory 0 (see SegmentRanges). */
export function dataSegmentRanges(wasm: Uint8Array): SegmentRanges {
  return instantiationEffects(wasm).ranges;
}

/** Data segments and start function of a module (unparseable: unknown ranges, and assume a start function). */
export function instantiationEffects(wasm: Uint8Array): InstantiationEffects {
  const hit = cache.get(wasm);
  if (hit !== undefined) return hit;
  let out: InstantiationEffects;
  try {
    out = parse(wasm);
  } catch {
    out = { ranges: null, start: true };
  }
  cache.set(wasm, out);
  return out;
}

function parse(wasm: Uint8Array): InstantiationEffects {
  const r = new Reader(wasm);
  r.at = 8; // magic, version
  let ranges: Array<[number, number]> | null = [];
  let start = false;
  while (r.at < wasm.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.at + size;
    if (end > wasm.length) throw new Error('truncated');
    if (id === 8) start = true;
    if (id !== 11 || ranges === null) {
      r.at = end;
      continue;
    }
    ranges = segments(r);
    r.at = end;
  }
  return { ranges, start };
}

function segments(r: Reader): SegmentRanges {
  const ranges: Array<[number, number]> = [];
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    const flags = r.u32();
    if (flags === 1) {
      r.at += r.u32(); // passive: written only by memory.init, never by instantiation
      continue;
    }
    if (flags === 2 && r.u32() !== 0) return null; // another memory: not ours to reason about
    if (flags !== 0 && flags !== 2) return null;
    // The offset must be exactly `i32.const N end`.
    if (r.byte() !== 0x41) return null;
    const offset = r.i32() >>> 0;
    if (r.byte() !== 0x0b) return null;
    const len = r.u32();
    ranges.push([offset, offset + len]);
    r.at += len;
  }
  return ranges;
}
