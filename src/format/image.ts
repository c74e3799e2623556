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
// I/O (O_DIRECT: no page cache to fault in), and tags a chunk as its pages go by the
// first time it is written; a chunk written again later (a page dirtied in a later
// round) is tagged again from the file at the end, once.
import fs from 'node:fs';
import { frameOf, PAGE_SIZE, PAGES_PER_SLOT } from '../memory/frames.js';
import { alignedBuffer, openMaybeDirect, readAllSync, writeAllSync } from './direct.js';
import { OPTIONAL_RECORD } from './records.js';
import { CHUNK_BYTES, CHUNK_PAGES, ChunkMac, type ChunkTagger } from './page-mac.js';
import { isZeroPage, type PageEntry, type SpaceSizes, type StreamHeader } from './stream.js';
import { StreamWriter } from './writer.js';
import { asError } from '../util/errors.js';

export const IMAGE_MAGIC = Buffer.from('ROAMIMG1', 'latin1');
/** 2: the page area is authenticated in chunks (PAGE_MACS), VERIFY counts pages by presence. */
export const IMAGE_VERSION = 2;
export const SUPERBLOCK_SIZE = 4096;
/** Fields: magic(8) version u32, pageSize u32, metaOffset u64, metaLength u64; the rest must be zero. */
export const SUPERBLOCK_USED = 32;

/**
 * Optional metadata record (older readers skip it): how many page frames the writer
 * put on disk (data or zeros written over data) and in how many extents the file
 * holds (runs of frames, superblock and metadata), u32 LE each.
 * Under the metadata's HMAC, so the reader can bound what the file may allocate.
 */
export const ALLOCATED = OPTIONAL_RECORD | 1;
/**
 * Mandatory metadata record of version 2 (a stream reader refuses it): u8 tag size,
 * 32-byte salt, u32 LE chunk count n, n flags (0: the chunk is a hole, nothing was
 * written there, and it is not read; 1: tagged), then the tags of the flagged chunks; chunks in ascending (slot,
 * chunk) order over every slot's pages in SPACES.
 */
export const PAGE_MACS = 0x101;
const EXTENT_BLOCKS = 32768; // longest ext4 extent, in 4 KiB blocks
const CHUNKS_PER_SLOT = PAGES_PER_SLOT / CHUNK_PAGES;

/** Byte offset of page (slot, page) in an image. */
export function pageOffset(slot: number, page: number): number {
  const off = SUPERBLOCK_SIZE + frameOf(slot, page) * PAGE_SIZE;
  if (!Number.isSafeInteger(off))
    throw new RangeError(`frame ${slot}:${page} is beyond the largest image offset`);
  return off;
}

const frameOffset = (frame: number): number => SUPERBLOCK_SIZE + frame * PAGE_SIZE;

/** Pages consecutive in the file and in one buffer. */
interface Segment {
  first: number;
  buffer: ArrayBufferLike;
  offset: number;
  length: number;
}

/**
 * The batch's frames ascending, each once (its last entry wins), so chunks fill in
 * order. A page cleaner's batch is ascending already: then nothing is sorted.
 */
function ordered(batch: readonly PageEntry[]): { frames: number[]; entries: PageEntry[] } {
  const frames: number[] = [];
  let ascending = true;
  for (const e of batch) {
    if (e.data && e.data.length !== PAGE_SIZE)
      throw new RangeError(
        `page ${e.slot}:${e.page} has ${e.data.length} bytes, expected ${PAGE_SIZE}`,
      );
    if (!Number.isInteger(e.page) || e.page < 0 || e.page >= PAGES_PER_SLOT)
      throw new RangeError(`bad page ${e.page}`);
    pageOffset(e.slot, e.page);
    const f = frameOf(e.slot, e.page);
    if (frames.length > 0 && f <= frames[frames.length - 1]) ascending = false;
    frames.push(f);
  }
  if (ascending) return { frames, entries: batch as PageEntry[] };
  const last = new Map<number, PageEntry>();
  batch.forEach((e, i) => last.set(frames[i], e));
  const sorted = [...last.keys()].sort((a, b) => a - b);
  return { frames: sorted, entries: sorted.map((f) => last.get(f)!) };
}

let zeros: Uint8Array | undefined;
/** An aligned zero page (what a page that went back to zero is overwritten with). */
const zeroPage = (): Uint8Array => (zeros ??= alignedBuffer(PAGE_SIZE));

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

  /**
   * Writes a batch, synchronously: the bytes are taken before returning (pages may
   * be live memory views), and so writes land in call order (the last write of a
   * page wins). Runs of pages that lie one after the other in one memory (a round
   * of the page cleaner) go to the file in one write, straight from that memory.
   */
  writePages(batch: readonly PageEntry[]): Promise<void> {
    if (this.done) return Promise.reject(new Error(`image ${this.path}: already finished`));
    if (this.failure !== undefined) return Promise.reject(this.failure);
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
      return Promise.resolve();
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

  private writeAt(first: number, view: Uint8Array): void {
    const pos = frameOffset(first);
    if (!this.direct || !this.unaligned.has(view.buffer)) {
      try {
        writeAllSync(this.fd, view, pos);
        return this.wrote(first, view.length);
      } catch (e) {
        if (!this.direct || (e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.unaligned.add(view.buffer);
      }
    }
    for (let at = 0; at < view.length; at += this.stage.length) {
      const part = view.subarray(at, at + this.stage.length);
      this.stage.set(part);
      writeAllSync(this.fd, this.stage.subarray(0, part.length), pos + at);
    }
    this.wrote(first, view.length);
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
    if (this.failure !== undefined) throw this.failure;
    try {
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
  abort(): Promise<void> {
    this.done = true;
    this.closeFds();
    return Promise.resolve();
  }
}
