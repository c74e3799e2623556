// The guest kernel's own page frames (frame-space slot 0). The RAM disk keeps its
// file data here rather than in JS objects so that file contents are dirty-tracked
// page by page and copied by the same page cleaner as process memory: every
// checkpoint therefore holds the whole VM, including its files.
import { FrameSpace, KERNEL_POOL_SLOT, PAGE_SIZE } from '../memory/frames.js';
import { Errno, WasiError } from './errno.js';

export interface PagePoolOptions {
  /** Maximum number of pages in use at once; alloc() past it throws NOSPC. */
  limitPages?: number;
  /** Initial backing capacity in pages (the pool grows by doubling). */
  initialCapacity?: number;
}

/** Serialised pool bookkeeping; page contents travel separately as frames. */
export interface PagePoolState {
  pages: number;
  free: number[];
  /** limitPages, when finite, so a restored VM keeps its disk quota. */
  limit?: number;
}

/**
 * A growable array of 4 KiB pages backed by one Buffer.
 *
 * View validity: `page(i)` and `dirtyMap()` return views into the current backing
 * store. Any `alloc()` may grow the pool, which replaces the backing store, so such
 * views are invalid after the next alloc(). Callers should fetch them again rather
 * than keep them (the RAM disk only ever goes through read/write/zero).
 */
export class PagePool implements FrameSpace {
  readonly slot = KERNEL_POOL_SLOT;
  readonly limitPages: number;
  private buf: Buffer;
  private dirty: Uint8Array;
  /** 1 = page is on the free list; guards against double free / use after free. */
  private freeMark: Uint8Array;
  /** Min-heap of free page numbers so alloc reuses the lowest page first. */
  private heap: number[] = [];
  private count = 0;

  constructor(opts: PagePoolOptions = {}) {
    this.limitPages = opts.limitPages ?? Infinity;
    const cap = Math.max(1, opts.initialCapacity ?? 16);
    this.buf = Buffer.alloc(cap * PAGE_SIZE);
    this.dirty = new Uint8Array(cap);
    this.freeMark = new Uint8Array(cap);
  }

  /** Pages ever handed out (the high-water mark); the frame space's size. */
  pageCount(): number {
    return this.count;
  }

  /** Pages currently allocated (not on the free list). */
  inUse(): number {
    return this.count - this.heap.length;
  }

  /** Free pages that alloc() can still hand out before hitting the limit. */
  available(): number {
    return this.limitPages - this.inUse();
  }

  /** Any page below pageCount(), free ones included (they are zero): the cleaner copies them all. */
  page(i: number): Uint8Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.count)
      throw new RangeError(`page ${i} not in pool`);
    return this.buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
  }

  dirtyMap(): Uint8Array {
    return this.dirty.subarray(0, this.count);
  }

  /** Allocate a zeroed page. */
  alloc(): number {
    if (this.inUse() >= this.limitPages) throw new WasiError(Errno.NOSPC, 'kernel page pool full');
    if (this.heap.length > 0) {
      const p = this.heapPop();
      this.freeMark[p] = 0;
      return p; // already zeroed (and marked dirty) by free()
    }
    if (this.count * PAGE_SIZE >= this.buf.length) this.grow(this.count + 1);
    // Fresh pages are zero in the new buffer and absent pages restore as zero,
    // so they need no dirty mark.
    return this.count++;
  }

  /** Return a page to the pool. It is zeroed so a checkpoint never leaks stale data. */
  free(page: number): void {
    this.check(page);
    this.buf.fill(0, page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    this.dirty[page] = 1;
    this.freeMark[page] = 1;
    this.heapPush(page);
  }

  read(page: number, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    this.checkRange(page, offset, length);
    const base = page * PAGE_SIZE + offset;
    dst.set(this.buf.subarray(base, base + length), dstOffset);
  }

  write(page: number, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.checkRange(page, offset, length);
    if (length === 0) return;
    this.buf.set(src.subarray(srcOffset, srcOffset + length), page * PAGE_SIZE + offset);
    this.dirty[page] = 1;
  }

  zero(page: number, offset: number, length: number): void {
    this.checkRange(page, offset, length);
    if (length === 0) return;
    const base = page * PAGE_SIZE + offset;
    this.buf.fill(0, base, base + length);
    this.dirty[page] = 1;
  }

  isFree(page: number): boolean {
    return page >= 0 && page < this.count && this.freeMark[page] === 1;
  }

  toJSON(): PagePoolState {
    const state: PagePoolState = { pages: this.count, free: [...this.heap].sort((a, b) => a - b) };
    if (Number.isFinite(this.limitPages)) state.limit = this.limitPages;
    return state;
  }

  /**
   * Rebuild a pool from its bookkeeping and page contents (frame data from a
   * checkpoint). Pages missing from `pageData` are zero. Restored pages are not
   * marked dirty: they equal the checkpoint they came from. `opts.limitPages`
   * overrides the saved limit.
   */
  static restore(
    state: PagePoolState,
    pageData: Map<number, Uint8Array>,
    opts: PagePoolOptions = {},
  ): PagePool {
    const pool = new PagePool({
      limitPages: opts.limitPages ?? state.limit,
      initialCapacity: Math.max(state.pages, opts.initialCapacity ?? 16),
    });
    pool.count = state.pages;
    for (const [p, data] of pageData) {
      if (!Number.isInteger(p) || p < 0 || p >= state.pages)
        throw new RangeError(`page ${p} outside pool of ${state.pages}`);
      if (data.length !== PAGE_SIZE) throw new RangeError(`page ${p} has ${data.length} bytes`);
      pool.buf.set(data, p * PAGE_SIZE);
    }
    for (const p of state.free) {
      if (!Number.isInteger(p) || p < 0 || p >= state.pages || pool.freeMark[p])
        throw new RangeError(`bad free page ${p}`);
      pool.freeMark[p] = 1;
      pool.heapPush(p);
    }
    return pool;
  }

  private grow(minPages: number): void {
    let cap = this.buf.length / PAGE_SIZE;
    while (cap < minPages) cap *= 2;
    const buf = Buffer.alloc(cap * PAGE_SIZE);
    buf.set(this.buf.subarray(0, this.count * PAGE_SIZE));
    this.buf = buf;
    const dirty = new Uint8Array(cap);
    dirty.set(this.dirty.subarray(0, this.count));
    this.dirty = dirty;
    const mark = new Uint8Array(cap);
    mark.set(this.freeMark.subarray(0, this.count));
    this.freeMark = mark;
  }

  // Kernel bugs (bad page numbers) are not guest errors, so they throw RangeError.
  private check(page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.count)
      throw new RangeError(`page ${page} not in pool`);
    if (this.freeMark[page]) throw new RangeError(`page ${page} is free`);
  }

  private checkRange(page: number, offset: number, length: number): void {
    this.check(page);
    if (offset < 0 || length < 0 || offset + length > PAGE_SIZE)
      throw new RangeError(`range ${offset}+${length} outside page`);
  }

  private heapPush(v: number): void {
    const h = this.heap;
    let i = h.push(v) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= v) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = v;
  }

  private heapPop(): number {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1] < h[l] ? l + 1 : l;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
