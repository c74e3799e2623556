// A typed view over a program's linear memory, shared by every WASI interface.
// Every write the kernel makes marks the pages it touched, as the program's own
// write barrier would, so that a checkpoint taken meanwhile copies them again.
import type { Process } from '../process.js';

const te = new TextEncoder();
const td = new TextDecoder();

/** Byte length of `s` as UTF-8. */
export const utf8Length = (s: string): number => te.encode(s).length;
export const utf8 = (s: string): Uint8Array => te.encode(s);

export class GuestMemory {
  constructor(private readonly p: Process) {}

  /** The whole memory, re-read each call: memory.grow replaces the buffer. */
  bytes(): Uint8Array {
    return this.p.bytes();
  }
  private dv(): DataView {
    return this.p.view();
  }
  dirty(ptr: number, len: number): void {
    this.p.markDirty(ptr, len);
  }

  u8(ptr: number): number {
    return this.dv().getUint8(ptr);
  }
  u16(ptr: number): number {
    return this.dv().getUint16(ptr, true);
  }
  u32(ptr: number): number {
    return this.dv().getUint32(ptr, true);
  }
  u64(ptr: number): bigint {
    return this.dv().getBigUint64(ptr, true);
  }
  setU8(ptr: number, v: number): void {
    this.dv().setUint8(ptr, v);
    this.dirty(ptr, 1);
  }
  setU16(ptr: number, v: number): void {
    this.dv().setUint16(ptr, v, true);
    this.dirty(ptr, 2);
  }
  setU32(ptr: number, v: number): void {
    this.dv().setUint32(ptr, v, true);
    this.dirty(ptr, 4);
  }
  setU64(ptr: number, v: bigint): void {
    this.dv().setBigUint64(ptr, v, true);
    this.dirty(ptr, 8);
  }

  /** `len` bytes at `ptr` as UTF-8. */
  str(ptr: number, len: number): string {
    return td.decode(this.bytes().subarray(ptr, ptr + len));
  }
  write(ptr: number, data: Uint8Array): void {
    this.bytes().set(data, ptr);
    this.dirty(ptr, data.length);
  }

  /** The buffers of an iovec array (`n` pairs of u32 base, u32 length). */
  iovecs(ptr: number, n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const base = this.u32(ptr + i * 8);
      const len = this.u32(ptr + i * 8 + 4);
      out.push(this.bytes().subarray(base, base + len));
    }
    return out;
  }

  /**
   * Fill the iovecs in order from `fill` (bytes it put in `dst`; null = nothing
   * yet). Returns the total, or null when nothing at all was available.
   */
  scatter(ptr: number, n: number, fill: (dst: Uint8Array) => number | null): number | null {
    let total = 0;
    for (const iov of this.iovecs(ptr, n)) {
      if (iov.length === 0) continue;
      const got = fill(iov);
      if (got === null) return total > 0 ? total : null;
      this.dirty(iov.byteOffset, got);
      total += got;
      if (got < iov.length) break;
    }
    return total;
  }

  /** The iovecs' bytes as one buffer (a view when there is only one). */
  gather(ptr: number, n: number): Uint8Array {
    const parts = this.iovecs(ptr, n);
    if (parts.length === 1) return parts[0];
    const size = parts.reduce((a, b) => a + b.length, 0);
    const out = new Uint8Array(size);
    let o = 0;
    for (const part of parts) {
      out.set(part, o);
      o += part.length;
    }
    return out;
  }
}
