// Program memories built before the VM is: while a migration's pages arrive, or
// read straight from a disk image. Writing each page into the WebAssembly.Memory
// the restored program will use leaves nothing to copy between the end of the
// stream and the first instruction: for a 256 MiB VM that copy alone was hundreds
// of milliseconds.
import { PAGE_SIZE } from '../memory/frames.js';
import { KERNEL_POOL_SLOT } from '../memory/frames.js';
import { CheckpointError } from '../format/index.js';

const WASM_PAGE = 65536;

export class Memories {
  private readonly mems = new Map<number, { mem: WebAssembly.Memory; u8: Uint8Array }>();
  /** Wasm-page maximum every program's memory import accepts; null until the modules are known. */
  private maximum: number | null = null;
  /** Wasm pages of roam's hidden region above the program's pages (the same for every module, or nothing is prebuilt). */
  private region = 0;
  private disabled = false;

  /**
   * Start building, now that the modules are compiled: `layouts` are their memories'
   * declared maximum sizes and hidden regions. Programs that differ cannot share
   * one guess, so then nothing is prebuilt (the restore copies the pages instead).
   */
  start(
    layouts: Array<{ maximum: number; region: number }>,
    replay: Iterable<[number, number, Uint8Array]>,
  ): void {
    if (new Set(layouts.map((l) => `${l.maximum}/${l.region}`)).size !== 1) {
      this.disabled = true;
      return;
    }
    this.maximum = layouts[0].maximum;
    this.region = layouts[0].region;
    for (const [slot, page, data] of replay) this.put(slot, page, data);
  }

  /** Frame-space sizes announced by the source: each memory then grows once, not page by page. */
  private readonly sizes = new Map<number, number>();
  reserve(sizes: Map<number, number>): void {
    for (const [slot, pages] of sizes) this.sizes.set(slot, pages);
  }

  /**
   * Write a page (null: zero) into its program's memory; returns whether this
   * memory now holds it (false: not a program memory, or nothing is prebuilt).
   */
  put(slot: number, page: number, data: Uint8Array | null): boolean {
    if (this.maximum === null || this.disabled || slot === KERNEL_POOL_SLOT) return false;
    let m = this.mems.get(slot);
    // Grow to the announced size in one step: every grow also makes V8 account for
    // more external memory, and page-by-page growth spent most of a 256 MiB
    // migration in grow() and the garbage collector.
    // The region goes on top from the start: growing a large memory by it at the
    // build was milliseconds of downtime (and woke the garbage collector).
    const announced = Math.ceil(((this.sizes.get(slot) ?? 0) * PAGE_SIZE) / WASM_PAGE);
    const need =
      Math.max(
        Math.floor((page * PAGE_SIZE) / WASM_PAGE) + 1,
        Math.min(announced, this.maximum - this.region),
      ) + this.region;
    if (need > this.maximum) {
      // Pages already handed over cannot be taken back: no program could have had this page.
      throw new CheckpointError(
        'corrupted',
        `migration stream has page ${page} of frame space ${slot}, beyond the largest memory its programs accept (${this.maximum} wasm pages)`,
      );
    }
    if (!m) {
      const mem = new WebAssembly.Memory({ initial: need, maximum: this.maximum });
      this.mems.set(slot, (m = { mem, u8: new Uint8Array(mem.buffer) }));
    } else if (m.u8.length < need * WASM_PAGE) {
      m.mem.grow(need - m.u8.length / WASM_PAGE);
      m.u8 = new Uint8Array(m.mem.buffer);
    }
    if (data) m.u8.set(data, page * PAGE_SIZE);
    else m.u8.fill(0, page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    return true;
  }

  /**
   * The whole memory of a frame space, created at its reserved size (fresh, so
   * zero), for a reader that writes its pages itself; undefined where nothing is
   * prebuilt.
   */
  view(slot: number): Uint8Array | undefined {
    const pages = this.sizes.get(slot) ?? 0;
    if (pages === 0 || !this.put(slot, pages - 1, null)) return undefined;
    return this.mems.get(slot)!.u8;
  }

  /** Whether the pages of this frame space live in a prebuilt memory (and nowhere else). */
  holds(slot: number): boolean {
    return !this.disabled && this.mems.has(slot);
  }

  /** The prebuilt memory of a frame space, if it was built. */
  take(slot: number): WebAssembly.Memory | undefined {
    return this.disabled ? undefined : this.mems.get(slot)?.mem;
  }
}
