// One VM-wide page-frame space (thesis 6.2): every 4 KiB page the VM owns has a
// frame number. Slot 0 is the guest kernel's page pool (RAM disk data); slot k >= 1
// is the linear memory of process k. A frame number is slot * 2^20 + page, so a
// process may use the full 4 GiB of wasm32 memory.
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
export const PAGES_PER_SLOT = 1 << 20;
export const KERNEL_POOL_SLOT = 0;

export const frameOf = (slot: number, page: number): number => slot * PAGES_PER_SLOT + page;
export const slotOf = (frame: number): number => Math.floor(frame / PAGES_PER_SLOT);
export const pageOf = (frame: number): number => frame % PAGES_PER_SLOT;

/**
 * A range of page frames the page cleaner can copy: the kernel page pool or one
 * process' linear memory. `dirty` holds one byte per page, non-zero = written since
 * the cleaner last cleared it (the write barrier sets it for wasm stores, the kernel
 * for its own writes).
 */
export interface FrameSpace {
  readonly slot: number;
  /** Number of 4 KiB pages currently in the space. */
  pageCount(): number;
  /** A 4096-byte view of page `page` (valid until the space grows). */
  page(page: number): Uint8Array;
  /** One byte per page; the cleaner reads and clears it. */
  dirtyMap(): Uint8Array;
}

/** Bytes of the dirty vector compared at a time against zeros before looking closer. */
const SCAN_CHUNK = 256;
const CLEAN = Buffer.alloc(SCAN_CHUNK);

/**
 * The dirty pages of a dirty vector, ascending; with `clear`, their bytes are reset.
 * Clean stretches are skipped with a native compare: the freeze runs this once
 * over every space, before V8 has optimised anything, and a byte-by-byte loop over
 * a 256 MiB VM's 65,536 entries took milliseconds of the freeze.
 */
export function dirtyPages(map: Uint8Array, clear = false): number[] {
  const out: number[] = [];
  const buf = Buffer.from(map.buffer, map.byteOffset, map.byteLength);
  for (let at = 0; at < buf.length; at += SCAN_CHUNK) {
    const end = Math.min(buf.length, at + SCAN_CHUNK);
    if (CLEAN.subarray(0, end - at).equals(buf.subarray(at, end))) continue;
    for (let i = at; i < end; i++) if (buf[i]) out.push(i);
  }
  if (clear) for (const i of out) buf[i] = 0;
  return out;
}

/** How many pages are dirty (see dirtyPages). */
export function countDirty(map: Uint8Array): number {
  return dirtyPages(map).length;
}
