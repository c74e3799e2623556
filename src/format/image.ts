// The checkpoint disk image with the thesis' 1:1 layout: a superblock, then every
// page at a fixed offset derived from its frame number (a sparse file: zero pages
// are holes), then a metadata record stream (HEADER, MODULEs, SPACES, KERNEL,
// VERIFY, PAGE_MACS, END). A restore can read any page without parsing the others,
// straight into the memory it will run in (image-read.ts).
//
// Version 2 authenticates the page area in 1 MiB chunks (page-mac.ts) instead of
// hashing each page for VERIFY, which counts pages by presence as a migration
// stream's does: the tags, under the metadata's HMAC, cover every byte a reader loads.
// The writer writes runs of pages straight from the program's memory with direct
// I/O (O_DIRECT: no page cache to fault in), in the thread pool while the page
// cleaner prepares its next batch, and tags a chunk as its pages go by the
// first time it is written; a chunk written again later (a page dirtied in a later
// round) is tagged again from the file at the end, once.
import fs from 'node:fs';
import { frameOf, PAGE_SIZE } from '../memory/frames.js';
import { alignedBuffer, openMaybeDirect, readAllSync, writeAll, writeAllSync } from './direct.js';
import { CHUNK_BYTES, CHUNK_PAGES, ChunkMac, type ChunkTagger } from './page-mac.js';
import { isZeroPage, type PageEntry, type SpaceSizes, type StreamHeader } from './stream.js';
import { StreamWriter } from './writer.js';
import { asError } from '../util/errors.js';
import {
  ALLOCATED,
  CHUNKS_PER_SLOT,
  EXTENT_BLOCKS,
  frameOffset,
  IMAGE_MAGIC,
  IMAGE_VERSION,
  ordered,
  PAGE_MACS,
  SUPERBLOCK_SIZE,
  zeroPage,
  type Segment,
} from './image-layout.js';

export {
  ALLOCATED,
  IMAGE_MAGIC,
  IMAGE_VERSION,
  PAGE_MACS,
  pageOffset,
  SUPERBLOCK_SIZE,
  SUPERBLOCK_USED,
} from './image-layout.js';

export interface ImageContents {
  header: StreamHeader;
  modules: Uint8Array[];
  spaces: SpaceSizes;
  kernel: Uint8Array;
  verify: Uint8Array;
}

export class ImageWriter {
  /** Frames currently holding non-zero data on disk or in the staged chunk. */
  private readonly nonZero = new Set<number>();
  /** One past the highest frame that has bytes on disk. */
  private frameEnd = 0;
  /** Every frame this writer put bytes at. */
  private readonly written = new Set<number>();
  /** Chunks (frame / CHUNK_PAGES) with bytes on disk or staged. */
  private readonly touched = new Set<number>();
  /** Tag of a chunk's bytes on disk; absent for one written again since (tagged at the end). */
  private readonly tags = new Map<number, Buffer>();
  /** The chunk being tagged as it is written for the first time. */
  private open: { chunk: number; tagger: ChunkTagger } | undefined;
  /** Aligned: pages of buffers direct I/O refuses, and read-backs. */
  private readonly stage = alignedBuffer(CHUNK_BYTES);
  private readonly mac: ChunkMac;
  private failure: Error | undefined;
  private done = false;
  private closed = false;
  bytesWritten = 0;
  pagesWritten = 0;

  private constructor(
    private readonly fd: number,
    private readonly direct: boolean,
    /** The same file, buffered: superblock and metadata are not block-aligned. */
    private readonly meta: number,
    readonly path: string,
    private readonly key: Buffer | undefined,
  ) {
    this.mac = new ChunkMac(key);
  }

  /** Creates (or truncates) the image file. */
  static create(path: string, opts: { key?: Buffer } = {}): Promise<ImageWriter> {
    try {
      const c = fs.constants;
      const { fd, direct } = openMaybeDirect(path, c.O_RDWR | c.O_CREAT | c.O_TRUNC);
      let meta: number;
      try {
        meta = fs.openSync(path, 'r+');
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
      return Promise.resolve(new ImageWriter(fd, direct, meta, path, opts.key));
    } catch (e) {
      return Promise.reject(asError(e));
    }
  }

  writePage(slot: number, page: number, data: Uint8Array | null): Promise<void> {
    return this.writePages([{ slot, page, data }]);
  }

  /** Writes under way in the thread pool, and the frames they cover. */
  private readonly inflight = new Set<Promise<void>>();
  /** Frame -> writes under way that cover it. */
  private readonly busy = new Map<number, number>();
  /** This call's writes. */
  private ops: Array<Promise<void>> = [];

  /**
   * Writes a batch; resolves once its pages are in the file. Everything about the
   * batch is decided during the call (what is zero, the chunks' tags), and writes
   * land in call order (the last write of a page wins). Runs of pages that lie one
   * after the other in one memory (a round of the page cleaner) go to the file in
   * one write, copied during the call and written in the thread pool while the
   * caller goes on; a chunk written again is tagged from the file at the end.
   */
  writePages(batch: readonly PageEntry[]): Promise<void> {
    if (this.done) return Promise.reject(new Error(`image ${this.path}: already finished`));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.ops = [];
    try {
      const { frames, entries } = ordered(batch);
      let seg: Segment | undefined;
      for (let k = 0; k < frames.length; k++) {
        const f = frames[k];
        const e = entries[k].data;
        const d = e === null || isZeroPage(e) ? null : e;
        // A zero page that is already zero (a hole, or zeros written) needs no write.
        if (d === null && !this.nonZero.has(f)) {
          this.writeSegment(seg);
          seg = undefined;
          continue;
        }
        if (d === null) this.nonZero.delete(f);
        else this.nonZero.add(f);
        const bytes = d ?? zeroPage();
        if (
          seg &&
          seg.first + seg.length / PAGE_SIZE === f &&
          bytes.buffer === seg.buffer &&
          bytes.byteOffset === seg.offset + seg.length
        )
          seg.length += PAGE_SIZE;
        else {
          this.writeSegment(seg);
          seg = { first: f, buffer: bytes.buffer, offset: bytes.byteOffset, length: PAGE_SIZE };
        }
      }
      this.writeSegment(seg);
      this.pagesWritten += batch.length;
      return Promise.all(this.ops).then(() => undefined);
    } catch (e) {
      this.failure = asError(e);
      return Promise.reject(this.failure);
    }
  }

  /** Writes a segment and accounts for it chunk by chunk (tags). */
  private writeSegment(s: Segment | undefined): void {
    if (!s) return;
    const view = new Uint8Array(s.buffer, s.offset, s.length);
    this.writeAt(s.first, view);
    for (let at = 0; at < s.length;) {
      const f = s.first + at / PAGE_SIZE;
      const chunk = Math.floor(f / CHUNK_PAGES);
      const i = f - chunk * CHUNK_PAGES;
      const n = Math.min(CHUNK_PAGES - i, (s.length - at) / PAGE_SIZE);
      this.account(chunk, i, view.subarray(at, at + n * PAGE_SIZE));
      at += n * PAGE_SIZE;
    }
  }

  /**
   * Keeps a chunk's tag up to date with pages just written at page i: a chunk
   * written for the first time is tagged as its pages go by, in order (its pages
   * not written are holes, zeros); a chunk written again, or out of order, is
   * tagged from the file at the end.
   */
  private account(chunk: number, i: number, bytes: Uint8Array): void {
    const o = this.open;
    if (o?.chunk === chunk) {
      if (i * PAGE_SIZE >= o.tagger.length) {
        o.tagger.zerosTo(i * PAGE_SIZE);
        o.tagger.update(bytes);
      } else this.open = undefined;
      return;
    }
    if (!this.touched.has(chunk)) {
      this.closeOpen();
      this.touched.add(chunk);
      const slot = Math.floor(chunk / CHUNKS_PER_SLOT);
      const tagger = this.mac.begin(slot, chunk - slot * CHUNKS_PER_SLOT);
      tagger.zerosTo(i * PAGE_SIZE);
      tagger.update(bytes);
      this.open = { chunk, tagger };
      return;
    }
    this.tags.delete(chunk);
  }

  private closeOpen(): void {
    const o = this.open;
    if (!o) return;
    this.open = undefined;
    this.tags.set(o.chunk, o.tagger.digest());
  }

  /** Buffers direct I/O refused (not page-aligned): their pages go through `stage`. */
  private readonly unaligned = new WeakSet<ArrayBufferLike>();

  /**
   * Starts writing a copy of `view` at frame `first`, at once, unless a write under
   * way covers one of its frames: then it waits for every write under way, so that
   * the later write of a page lands last.
   */
  private writeAt(first: number, view: Uint8Array): void {
    const n = view.length / PAGE_SIZE;
    let overlaps = false;
    for (let k = 0; k < n && !overlaps; k++) overlaps = this.busy.has(first + k);
    // The bytes are taken now, into aligned memory, never read later from where they
    // are: a live memory's page can change before the thread pool writes it (a
    // checkpoint's programs run on after the freeze), and its chunk's tag is of these
    // bytes. (Writing straight from the programs' memories restored wrong state in
    // checkpoint-exit about one run in six.)
    const bytes = alignedBuffer(view.length);
    bytes.set(view);
    for (let k = 0; k < n; k++) this.busy.set(first + k, (this.busy.get(first + k) ?? 0) + 1);
    const before = overlaps ? Promise.allSettled([...this.inflight]) : Promise.resolve();
    const p = before
      .then(() => this.put(bytes, frameOffset(first)))
      .catch((e: unknown) => {
        this.failure ??= asError(e);
        throw this.failure;
      })
      .finally(() => {
        this.inflight.delete(p);
        for (let k = 0; k < n; k++) {
          const left = this.busy.get(first + k)! - 1;
          if (left === 0) this.busy.delete(first + k);
          else this.busy.set(first + k, left);
        }
      });
    p.catch(() => undefined); // the call's promise reports it
    this.inflight.add(p);
    this.ops.push(p);
    this.wrote(first, view.length);
  }

  /** One write; a buffer direct I/O refuses after all is copied into aligned memory. */
  private async put(bytes: Uint8Array, pos: number): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    try {
      await writeAll(this.fd, bytes, pos);
    } catch (e) {
      if (!this.direct || (e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      this.unaligned.add(bytes.buffer);
      const copy = alignedBuffer(bytes.length);
      copy.set(bytes);
      await writeAll(this.fd, copy, pos);
    }
  }

  /** Every write under way has ended (failed or not). */
  private async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private wrote(first: number, bytes: number): void {
    const n = bytes / PAGE_SIZE;
    for (let k = 0; k < n; k++) this.written.add(first + k);
    this.bytesWritten += bytes;
    this.frameEnd = Math.max(this.frameEnd, first + n);
  }

  /** PAGE_MACS: every chunk of every slot, zero or tagged (from the file where it was rewritten). */
  private pageMacs(spaces: SpaceSizes): Buffer {
    const flags: number[] = [];
    const tags: Buffer[] = [];
    for (const [slot, count] of Object.entries(spaces)
      .map(([s, n]) => [Number(s), n] as const)
      .sort((a, b) => a[0] - b[0])) {
      for (let k = 0; k * CHUNK_PAGES < count; k++) {
        const chunk = slot * CHUNKS_PER_SLOT + k;
        const first = chunk * CHUNK_PAGES;
        const n = Math.min(CHUNK_PAGES, count - k * CHUNK_PAGES);
        // A chunk the writer never put bytes in is a hole: any byte there is caught by
        // the reader's allocation check. Every other chunk is read and checked.
        let data = false;
        for (let f = first; f < first + CHUNK_PAGES && !data; f++) data = this.written.has(f);
        flags.push(data ? 1 : 0);
        if (!data) continue;
        const kept = n === CHUNK_PAGES ? this.tags.get(chunk) : undefined;
        tags.push(kept ?? this.tagFromFile(slot, k, first, n));
      }
    }
    const head = Buffer.alloc(1 + this.mac.salt.length + 4);
    head[0] = this.mac.tagBytes;
    this.mac.salt.copy(head, 1);
    head.writeUInt32LE(flags.length, 1 + this.mac.salt.length);
    return Buffer.concat([head, Buffer.from(flags), ...tags]);
  }

  /** Tag of a chunk's first n pages as they are in the file (a hole reads as zeros). */
  private tagFromFile(slot: number, k: number, first: number, n: number): Buffer {
    const onDisk = Math.max(0, Math.min(n, this.frameEnd - first));
    const buf = this.stage.subarray(0, n * PAGE_SIZE);
    buf.fill(0, onDisk * PAGE_SIZE);
    if (onDisk > 0) readAllSync(this.fd, buf.subarray(0, onDisk * PAGE_SIZE), frameOffset(first));
    return this.mac.tag(slot, k, buf);
  }

  /** Writes metadata and superblock, syncs and closes the file. Returns the file size. */
  async finish(c: ImageContents): Promise<number> {
    if (this.done) throw new Error(`image ${this.path}: already finished`);
    this.done = true;
    try {
      await this.settled();
      if (this.failure !== undefined) throw this.failure;
      this.closeOpen();
      // The metadata must start after every page a reader will look at, written or a hole.
      let end = this.frameEnd;
      for (const [slot, n] of Object.entries(c.spaces))
        end = Math.max(end, frameOf(Number(slot), n));
      const metaOffset = SUPERBLOCK_SIZE + end * PAGE_SIZE;
      const parts: Buffer[] = [];
      const w = new StreamWriter((b) => void parts.push(b), { key: this.key });
      await w.header(c.header);
      for (const m of c.modules) await w.module(m);
      await w.spaces(c.spaces);
      await w.kernel(c.kernel);
      await w.verify(c.verify);
      await w.optional(ALLOCATED, this.allocated(end));
      await w.extra(PAGE_MACS, this.pageMacs(c.spaces));
      await w.end();
      const meta = Buffer.concat(parts);
      writeAllSync(this.meta, meta, metaOffset);
      fs.ftruncateSync(this.meta, metaOffset + meta.length);
      const sb = Buffer.alloc(SUPERBLOCK_SIZE);
      IMAGE_MAGIC.copy(sb, 0);
      sb.writeUInt32LE(IMAGE_VERSION, 8);
      sb.writeUInt32LE(PAGE_SIZE, 12);
      sb.writeBigUInt64LE(BigInt(metaOffset), 16);
      sb.writeBigUInt64LE(BigInt(meta.length), 24);
      writeAllSync(this.meta, sb, 0);
      this.bytesWritten += meta.length + sb.length;
      fs.fsyncSync(this.meta);
      return metaOffset + meta.length;
    } finally {
      this.closeFds();
    }
  }

  /** ALLOCATED: frames on disk and the file's extents (see the record's comment). */
  private allocated(end: number): Buffer {
    // Extents of the file: runs of written frames, plus the superblock's and the metadata's
    // unless they continue a run (frame 0 follows the superblock; the metadata follows `end`).
    const frames = [...this.written].sort((a, b) => a - b);
    let runs = 2 - (this.written.has(0) ? 1 : 0) - (this.written.has(end - 1) ? 1 : 0);
    frames.forEach((f, i) => (runs += i === 0 || frames[i - 1] !== f - 1 ? 1 : 0));
    runs += Math.floor(frames.length / EXTENT_BLOCKS);
    const alloc = Buffer.alloc(8);
    alloc.writeUInt32LE(frames.length, 0);
    alloc.writeUInt32LE(runs, 4);
    return alloc;
  }

  private closeFds(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of [this.fd, this.meta]) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
    }
  }

  /** Closes the file without finishing it (the caller removes it). */
  async abort(): Promise<void> {
    this.done = true;
    await this.settled(); // no write may be left on a closed descriptor
    this.closeFds();
  }
}
