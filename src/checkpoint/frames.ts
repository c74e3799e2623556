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
