import { writeSync } from 'node:fs';
// The checkpoint disk image with the thesis' 1:1 layout: a superblock, then every
// page at a fixed offset derived from its frame number (a sparse file: zero pages
// are holes), then a metadata record stream (HEADER, MODULEs, SPACES, KERNEL,
// VERIFY, END). A restore can map or read any page without parsing the others.
import { open, type FileHandle } from 'node:fs/promises';
import { frameOf, PAGE_SIZE, PAGES_PER_SLOT } from '../memory/frames.js';
import { CheckpointAssembler, type Checkpoint } from './assemble.js';
import { CheckpointError } from './errors.js';
import {
  KNOWN_RECORD_TYPES,
  OPTIONAL_RECORD,
  RecordDecoder,
  RecordType,
  type DecoderOptions,
} from './records.js';
import { isZeroPage, type PageEntry, type SpaceSizes, type StreamHeader } from './stream.js';
import { StreamWriter } from './writer.js';
import { asError } from '../util/errors.js';

export const IMAGE_MAGIC = Buffer.from('ROAMIMG1', 'latin1');
export const IMAGE_VERSION = 1;
export const SUPERBLOCK_SIZE = 4096;
/** Fields: magic(8) version u32, pageSize u32, metaOffset u64, metaLength u64; the rest must be zero. */
const SUPERBLOCK_USED = 32;
/** Sanity bound on the metadata (modules + kernel state) before we allocate for it. */
const MAX_META = 1024 * 1024 * 1024;
/** Pages read per positional read when loading an image. */
const READ_RUN = 2048;

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);
/**
 * Optional metadata record (older readers skip it): how many page frames the writer
 * put on disk (data or zeros written over data) and in how many extents the file
 * holds (runs of frames, superblock and metadata), u32 LE each.
 * Under the metadata's HMAC, so the reader can bound what the file may allocate.
 */
export const ALLOCATED = OPTIONAL_RECORD | 1;
const EXTENT_BLOCKS = 32768; // longest ext4 extent, in 4 KiB blocks

/** Byte offset of page (slot, page) in an image. */
export function pageOffset(slot: number, page: number): number {
  const off = SUPERBLOCK_SIZE + frameOf(slot, page) * PAGE_SIZE;
  if (!Number.isSafeInteger(off))
    throw new RangeError(`frame ${slot}:${page} is beyond the largest image offset`);
  return off;
}

export interface ImageContents {
  header: StreamHeader;
  modules: Uint8Array[];
  spaces: SpaceSizes;
  kernel: Uint8Array;
  verify: Uint8Array;
}

export class ImageWriter {
  /** Frames currently holding non-zero data on disk (so a later zero must overwrite them). */
  private readonly nonZero = new Set<number>();
  /** One past the highest frame that has bytes on disk. */
  private frameEnd = 0;
  /** Every frame this writer put bytes at. */
  private readonly written = new Set<number>();
  private tail: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private done = false;
  bytesWritten = 0;
  pagesWritten = 0;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly key: Buffer | undefined,
  ) {}

  /** Creates (or truncates) the image file. */
  static async create(path: string, opts: { key?: Buffer } = {}): Promise<ImageWriter> {
    const fh = await open(path, 'w');
    return new ImageWriter(fh, path, opts.key);
  }

  writePage(slot: number, page: number, data: Uint8Array | null): Promise<void> {
    return this.writePages([{ slot, page, data }]);
  }

  /**
   * Writes a batch. The bytes are copied before returning (pages may be live memory
   * views); writes are serialised so that the last write of a page wins on disk.
   * Runs of consecutive frames become one positional write.
   */
  writePages(batch: readonly PageEntry[]): Promise<void> {
    if (this.done) return Promise.reject(new Error(`image ${this.path}: already finished`));
    // Last entry per frame wins; then ascending frame order for coalescing.
    const last = new Map<number, PageEntry>();
    try {
      for (const e of batch) {
        if (e.data && e.data.length !== PAGE_SIZE)
          throw new RangeError(
            `page ${e.slot}:${e.page} has ${e.data.length} bytes, expected ${PAGE_SIZE}`,
          );
        if (!Number.isInteger(e.page) || e.page < 0 || e.page >= PAGES_PER_SLOT)
          throw new RangeError(`bad page ${e.page}`);
        pageOffset(e.slot, e.page);
        last.set(frameOf(e.slot, e.page), e);
      }
    } catch (err) {
      return Promise.reject(asError(err));
    }
    const frames = [...last.keys()].sort((a, b) => a - b);
    const runs: Array<{ frame: number; buf: Buffer }> = [];
    let run: { frame: number; pages: Uint8Array[] } | undefined;
    const close = (): void => {
      if (!run) return;
      const buf = Buffer.allocUnsafe(run.pages.length * PAGE_SIZE);
      run.pages.forEach((p, i) => buf.set(p, i * PAGE_SIZE));
      runs.push({ frame: run.frame, buf });
      run = undefined;
    };
    for (const f of frames) {
      const d = last.get(f)!.data;
      const zero = d === null || isZeroPage(d);
      // A zero page that is already a hole needs no write.
      if (zero && !this.nonZero.has(f)) {
        close();
        continue;
      }
      if (zero) this.nonZero.delete(f);
      else this.nonZero.add(f);
      this.written.add(f);
      const bytes = zero ? ZERO_PAGE : d;
      if (run && run.frame + run.pages.length === f) run.pages.push(bytes);
      else {
        close();
        run = { frame: f, pages: [bytes] };
      }
    }
    close();
    const count = batch.length;
    const work = async (): Promise<void> => {
      if (this.failure !== undefined) throw this.failure;
      try {
        // Synchronous positional writes (into the page cache): an await per run would
        // cost an event-loop turn each, and so a program time slice each.
        for (const r of runs) {
          const pos = SUPERBLOCK_SIZE + r.frame * PAGE_SIZE;
          for (let off = 0; off < r.buf.length;)
            off += writeSync(this.fh.fd, r.buf, off, r.buf.length - off, pos + off);
          this.bytesWritten += r.buf.length;
          this.frameEnd = Math.max(this.frameEnd, r.frame + r.buf.length / PAGE_SIZE);
        }
        this.pagesWritten += count;
      } catch (e) {
        this.failure = asError(e);
        throw e;
      }
    };
    const p = this.tail.then(work);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Writes metadata and superblock, syncs and closes the file. Returns the file size. */
  async finish(c: ImageContents): Promise<number> {
    if (this.done) throw new Error(`image ${this.path}: already finished`);
    this.done = true;
    await this.tail;
    if (this.failure !== undefined) throw this.failure;
    // The metadata must start after every page a reader will look at, written or a hole.
    let end = this.frameEnd;
    for (const [slot, n] of Object.entries(c.spaces)) end = Math.max(end, frameOf(Number(slot), n));
    const metaOffset = SUPERBLOCK_SIZE + end * PAGE_SIZE;
    const parts: Buffer[] = [];
    const w = new StreamWriter((b) => void parts.push(b), { key: this.key });
    await w.header(c.header);
    for (const m of c.modules) await w.module(m);
    await w.spaces(c.spaces);
    await w.kernel(c.kernel);
    await w.verify(c.verify);
    // Extents of the file: runs of written frames, plus the superblock's and the metadata's
    // unless they continue a run (frame 0 follows the superblock; the metadata follows `end`).
    const frames = [...this.written].sort((a, b) => a - b);
    let runs = 2 - (this.written.has(0) ? 1 : 0) - (this.written.has(end - 1) ? 1 : 0);
    frames.forEach((f, i) => (runs += i === 0 || frames[i - 1] !== f - 1 ? 1 : 0));
    runs += Math.floor(frames.length / EXTENT_BLOCKS);
    const alloc = Buffer.alloc(8);
    alloc.writeUInt32LE(frames.length, 0);
    alloc.writeUInt32LE(runs, 4);
    await w.optional(ALLOCATED, alloc);
    await w.end();
    const meta = Buffer.concat(parts);
    await writeFully(this.fh, meta, metaOffset);
    await this.fh.truncate(metaOffset + meta.length);
    const sb = Buffer.alloc(SUPERBLOCK_SIZE);
    IMAGE_MAGIC.copy(sb, 0);
    sb.writeUInt32LE(IMAGE_VERSION, 8);
    sb.writeUInt32LE(PAGE_SIZE, 12);
    sb.writeBigUInt64LE(BigInt(metaOffset), 16);
    sb.writeBigUInt64LE(BigInt(meta.length), 24);
    await writeFully(this.fh, sb, 0);
    this.bytesWritten += meta.length + sb.length;
    await this.fh.sync();
    await this.fh.close();
    return metaOffset + meta.length;
  }

  /** Closes the file without finishing it (the caller removes it). */
  async abort(): Promise<void> {
    this.done = true;
    await this.tail;
    await this.fh.close().catch(() => undefined);
  }
}

async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let at = 0;
  while (at < buf.length) {
    const { bytesWritten } = await fh.write(buf, at, buf.length - at, position + at);
    at += bytesWritten;
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let at = 0;
  while (at < buf.length) {
    const { bytesRead } = await fh.read(buf, at, buf.length - at, position + at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return at;
}

/**
 * Bytes outside every slot are never read, so nothing verifies them: refuse an image
 * that holds any. Node has no lseek(SEEK_DATA), so the check is the file's allocated
 * size against what the writer says it put there (ALLOCATED, under the HMAC), plus
 * the blocks ext4 spends on extent maps beyond the 4 in its inode (340 a block).
 * Without that record (an older image) the bound is every page of every slot.
 */
function outsideSlots(
  st: { blocks: number; size: number },
  spaces: Map<number, number>,
  meta: number,
  alloc: { frames: number; runs: number } | undefined,
): void {
  const pages = alloc?.frames ?? [...spaces.values()].reduce((a, b) => a + b, 0);
  const extents = alloc?.runs ?? pages + 2;
  const leaves = extents <= 4 ? 0 : Math.ceil(extents / 340);
  const blocks =
    1 + pages + Math.ceil(meta / PAGE_SIZE) + leaves + (leaves > 4 ? Math.ceil(leaves / 340) : 0);
  const have = st.blocks * 512;
  if (have > blocks * PAGE_SIZE && have < st.size)
    throw corrupted(
      `${have} bytes allocated, but its pages and metadata fill at most ${blocks * PAGE_SIZE}: there are bytes outside every slot`,
    );
  // A file system without holes: bytes outside the slots cannot be told from its zeros.
  if (have >= st.size && st.size > blocks * PAGE_SIZE)
    throw corrupted(
      `${st.size} bytes on a file system without holes: bytes outside every slot cannot be checked`,
    );
}

const corrupted = (what: string): CheckpointError =>
  new CheckpointError('corrupted', `checkpoint image is corrupted: ${what}`);

/** Reads a whole image into memory, verifying metadata digest/HMAC and VERIFY. */
export async function readImage(path: string, opts: DecoderOptions = {}): Promise<Checkpoint> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const sb = Buffer.alloc(SUPERBLOCK_SIZE);
    const got = await readFully(fh, sb, 0);
    if (got < IMAGE_MAGIC.length || !sb.subarray(0, 8).equals(IMAGE_MAGIC)) {
      throw new CheckpointError('not-roam', `not a roam checkpoint image: bad magic in ${path}`);
    }
    if (got < SUPERBLOCK_SIZE)
      throw new CheckpointError(
        'truncated',
        `checkpoint image is truncated: ${size} bytes, shorter than its superblock`,
      );
    const version = sb.readUInt32LE(8);
    if (version !== IMAGE_VERSION) {
      throw new CheckpointError(
        'unsupported',
        `unsupported checkpoint image version ${version} (this roam reads version ${IMAGE_VERSION})`,
      );
    }
    const pageSize = sb.readUInt32LE(12);
    if (pageSize !== PAGE_SIZE)
      throw new CheckpointError(
        'unsupported',
        `unsupported checkpoint page size ${pageSize} (this roam uses ${PAGE_SIZE})`,
      );
    const metaOffset = Number(sb.readBigUInt64LE(16));
    const metaLength = Number(sb.readBigUInt64LE(24));
    // Nothing else covers the superblock, so its unused bytes must be exactly zero.
    if (sb.subarray(SUPERBLOCK_USED).some((b) => b !== 0))
      throw corrupted('non-zero reserved bytes in the superblock');
    if (metaOffset < SUPERBLOCK_SIZE || metaOffset % PAGE_SIZE !== 0 || metaLength > MAX_META) {
      throw corrupted(`bad metadata location ${metaOffset}+${metaLength}`);
    }
    if (metaOffset + metaLength > size) {
      throw new CheckpointError(
        'truncated',
        `checkpoint image is truncated: ${size} bytes, but its metadata ends at ${metaOffset + metaLength}`,
      );
    }
    if (metaOffset + metaLength < size) {
      throw new CheckpointError(
        'trailing',
        `checkpoint image has ${size - metaOffset - metaLength} unexpected bytes after its metadata`,
      );
    }

    const meta = Buffer.alloc(metaLength);
    await readFully(fh, meta, metaOffset);
    const dec = new RecordDecoder({
      ...opts,
      name: 'checkpoint image metadata',
      known: new Set([...KNOWN_RECORD_TYPES, ALLOCATED]),
    });
    let alloc: { frames: number; runs: number } | undefined;
    const asm = new CheckpointAssembler(false);
    let sawSpaces = false;
    for (const rec of dec.push(meta)) {
      if (rec.type === RecordType.SPACES) sawSpaces = true;
      if (rec.type !== ALLOCATED) asm.add(rec);
      else if (rec.payload.length === 8)
        alloc = { frames: rec.payload.readUInt32LE(0), runs: rec.payload.readUInt32LE(4) };
      else throw corrupted('bad ALLOCATED record');
    }
    dec.finish();
    if (!sawSpaces)
      throw new CheckpointError('missing', 'checkpoint image is incomplete: no SPACES record');

    outsideSlots(await fh.stat(), asm.spaceSizes, metaLength, alloc);
    let run = Buffer.alloc(READ_RUN * PAGE_SIZE);
    for (const [slot, count] of [...asm.spaceSizes].sort((a, b) => a[0] - b[0])) {
      if (pageOffset(slot, 0) + count * PAGE_SIZE > metaOffset)
        throw corrupted(`slot ${slot} (${count} pages) overlaps the metadata`);
      for (let first = 0; first < count; first += READ_RUN) {
        const n = Math.min(READ_RUN, count - first);
        const view = run.subarray(0, n * PAGE_SIZE);
        if ((await readFully(fh, view, pageOffset(slot, first))) !== view.length)
          throw corrupted('short read in the page area');
        // Copy only the non-zero pages out, compactly, so holes cost no memory.
        const live: number[] = [];
        for (let i = 0; i < n; i++)
          if (!isZeroPage(view.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))) live.push(i);
        if (live.length === 0) continue;
        if (live.length * 2 >= n) {
          // Mostly live: keep the run buffer itself (no copy) and read into a fresh one.
          for (const i of live)
            asm.setPage(slot, first + i, view.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
          run = Buffer.alloc(READ_RUN * PAGE_SIZE);
          continue;
        }
        const keep = Buffer.allocUnsafe(live.length * PAGE_SIZE);
        live.forEach((i, j) => {
          view.copy(keep, j * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
          asm.setPage(slot, first + i, keep.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE));
        });
      }
    }
    return asm.result('image', size, dec.signed);
  } finally {
    await fh.close();
  }
}
