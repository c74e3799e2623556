// Reading a disk image (image.ts): the superblock and the metadata first (under the
// metadata's HMAC), then each slot's pages straight into the memory the caller
// gives (a restored program's WebAssembly.Memory, or a buffer), with few large
// reads, checking each 1 MiB chunk against its tag where it landed.
import fs from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { PAGE_SIZE } from '../memory/frames.js';
import { CheckpointAssembler, type Checkpoint } from './assemble.js';
import { openMaybeDirect, readAllSync, readExtents } from './direct.js';
import { CheckpointError } from './errors.js';
import {
  ALLOCATED,
  IMAGE_MAGIC,
  IMAGE_VERSION,
  PAGE_MACS,
  pageOffset,
  SUPERBLOCK_SIZE,
  SUPERBLOCK_USED,
} from './image.js';
import { CHUNK_BYTES, CHUNK_PAGES, ChunkMac, SALT_BYTES } from './page-mac.js';
import { KNOWN_RECORD_TYPES, RecordDecoder, RecordType, type DecoderOptions } from './records.js';
import { isZeroPage } from './stream.js';
import { PageDigests, PRESENT } from './verify.js';

/** Sanity bound on the metadata (modules + kernel state) before we allocate for it. */
const MAX_META = 1024 * 1024 * 1024;
/** Chunks per read: 8 MiB. */
const READ_CHUNKS = 8;

const corrupted = (what: string): CheckpointError =>
  new CheckpointError('corrupted', `checkpoint image is corrupted: ${what}`);

/**
 * Bytes outside every slot are never read, so nothing verifies them: refuse an image
 * that holds any. Node has no lseek(SEEK_DATA), so the check is the file's allocated
 * size against what the writer says it put there (ALLOCATED, under the HMAC), plus
 * the blocks ext4 spends on extent maps beyond the 4 in its inode (340 a block).
 * Without that record the bound is every page of every slot.
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

/** The superblock's metadata location, after checking everything in it. */
function superblock(fd: number, path: string, size: number): { at: number; length: number } {
  const sb = Buffer.alloc(SUPERBLOCK_SIZE);
  const got = fs.readSync(fd, sb, 0, SUPERBLOCK_SIZE, 0);
  if (got < IMAGE_MAGIC.length || !sb.subarray(0, 8).equals(IMAGE_MAGIC))
    throw new CheckpointError('not-roam', `not a roam checkpoint image: bad magic in ${path}`);
  if (got < SUPERBLOCK_SIZE)
    throw new CheckpointError(
      'truncated',
      `checkpoint image is truncated: ${size} bytes, shorter than its superblock`,
    );
  const version = sb.readUInt32LE(8);
  if (version !== IMAGE_VERSION)
    throw new CheckpointError(
      'unsupported',
      `unsupported checkpoint image version ${version} (this roam reads version ${IMAGE_VERSION}${version < IMAGE_VERSION ? '; the image was written by an older roam, which can still restore it' : ''})`,
    );
  const pageSize = sb.readUInt32LE(12);
  if (pageSize !== PAGE_SIZE)
    throw new CheckpointError(
      'unsupported',
      `unsupported checkpoint page size ${pageSize} (this roam uses ${PAGE_SIZE})`,
    );
  const at = Number(sb.readBigUInt64LE(16));
  const length = Number(sb.readBigUInt64LE(24));
  // Nothing else covers the superblock, so its unused bytes must be exactly zero.
  if (sb.subarray(SUPERBLOCK_USED).some((b) => b !== 0))
    throw corrupted('non-zero reserved bytes in the superblock');
  if (at < SUPERBLOCK_SIZE || at % PAGE_SIZE !== 0 || length > MAX_META)
    throw corrupted(`bad metadata location ${at}+${length}`);
  if (at + length > size)
    throw new CheckpointError(
      'truncated',
      `checkpoint image is truncated: ${size} bytes, but its metadata ends at ${at + length}`,
    );
  if (at + length < size)
    throw new CheckpointError(
      'trailing',
      `checkpoint image has ${size - at - length} unexpected bytes after its metadata`,
    );
  return { at, length };
}

interface SlotChunks {
  /** Per chunk: its tag, or null (all zeros: not read). */
  tags: Array<Buffer | null>;
}

/** PAGE_MACS, split by slot in SPACES order. */
function parsePageMacs(
  payload: Buffer,
  spaces: Map<number, number>,
  key: Buffer | undefined,
): { mac: ChunkMac; slots: Map<number, SlotChunks> } {
  const head = 1 + SALT_BYTES + 4;
  if (payload.length < head) throw corrupted('PAGE_MACS record too short');
  const mac = new ChunkMac(key, payload.subarray(1, 1 + SALT_BYTES));
  if (payload[0] !== mac.tagBytes)
    throw corrupted(`PAGE_MACS has ${payload[0]}-byte tags, expected ${mac.tagBytes}`);
  const n = payload.readUInt32LE(1 + SALT_BYTES);
  const order = [...spaces].sort((a, b) => a[0] - b[0]);
  const want = order.reduce((a, [, count]) => a + Math.ceil(count / CHUNK_PAGES), 0);
  if (n !== want) throw corrupted(`PAGE_MACS covers ${n} chunks, SPACES has ${want}`);
  if (payload.length < head + n) throw corrupted('PAGE_MACS record too short');
  const flags = payload.subarray(head, head + n);
  let tagged = 0;
  for (const f of flags) {
    if (f > 1) throw corrupted(`PAGE_MACS has chunk flag ${f}`);
    tagged += f;
  }
  if (payload.length !== head + n + tagged * mac.tagBytes)
    throw corrupted('PAGE_MACS record has the wrong length');
  const slots = new Map<number, SlotChunks>();
  let i = 0,
    at = head + n;
  for (const [slot, count] of order) {
    const tags: Array<Buffer | null> = [];
    for (let k = 0; k * CHUNK_PAGES < count; k++, i++) {
      if (flags[i] === 0) tags.push(null);
      else {
        tags.push(payload.subarray(at, at + mac.tagBytes));
        at += mac.tagBytes;
      }
    }
    slots.set(slot, { tags });
  }
  return { mac, slots };
}

/** An open image whose metadata is verified; its pages are loaded on request. */
export class ImageReader {
  /** VERIFY's page sum over the pages loaded so far. */
  readonly present = new PageDigests();
  private closed = false;

  private constructor(
    private readonly fd: number,
    /** The same file with O_DIRECT, for aligned destinations (a program's memory), or -1. */
    private readonly direct: number,
    private readonly asm: CheckpointAssembler,
    private readonly macs: { mac: ChunkMac; slots: Map<number, SlotChunks> },
    readonly size: number,
    readonly signed: boolean,
  ) {}

  get spaceSizes(): Map<number, number> {
    return this.asm.spaceSizes;
  }
  get header() {
    return this.asm.header!;
  }
  get modules(): Map<string, Buffer> {
    return this.asm.modules;
  }

  static open(path: string, opts: DecoderOptions = {}): ImageReader {
    const fd = fs.openSync(path, 'r');
    try {
      const st = fs.fstatSync(fd);
      const meta = superblock(fd, path, st.size);
      const bytes = Buffer.alloc(meta.length);
      readAllSync(fd, bytes, meta.at);
      const dec = new RecordDecoder({
        ...opts,
        name: 'checkpoint image metadata',
        known: new Set([...KNOWN_RECORD_TYPES, ALLOCATED, PAGE_MACS]),
      });
      let alloc: { frames: number; runs: number } | undefined;
      let macs: Buffer | undefined;
      const asm = new CheckpointAssembler(false);
      let sawSpaces = false;
      for (const rec of dec.push(bytes)) {
        if (rec.type === RecordType.SPACES) sawSpaces = true;
        if (rec.type === PAGE_MACS) {
          if (macs) throw corrupted('second PAGE_MACS record');
          macs = rec.payload;
        } else if (rec.type !== ALLOCATED) asm.add(rec);
        else if (rec.payload.length === 8)
          alloc = { frames: rec.payload.readUInt32LE(0), runs: rec.payload.readUInt32LE(4) };
        else throw corrupted('bad ALLOCATED record');
      }
      dec.finish();
      if (!sawSpaces)
        throw new CheckpointError('missing', 'checkpoint image is incomplete: no SPACES record');
      if (!macs)
        throw new CheckpointError('missing', 'checkpoint image is incomplete: no PAGE_MACS record');
      const parsed = parsePageMacs(macs, asm.spaceSizes, dec.signed ? opts.key : undefined);
      outsideSlots(st, asm.spaceSizes, meta.length, alloc);
      for (const [slot, count] of asm.spaceSizes)
        if (pageOffset(slot, 0) + count * PAGE_SIZE > meta.at)
          throw corrupted(`slot ${slot} (${count} pages) overlaps the metadata`);
      let direct = -1;
      try {
        const d = openMaybeDirect(path, fs.constants.O_RDONLY);
        if (d.direct) direct = d.fd;
        else fs.closeSync(d.fd);
      } catch {
        // buffered reads only
      }
      return new ImageReader(fd, direct, asm, parsed, st.size, dec.signed);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /**
   * Reads slot `slot`'s pages into `into` (page i at i * 4096), which must hold them
   * all and be zero where the image holds zero chunks (fresh memory is), and checks
   * them against their tags. `aligned`: `into` starts on a page boundary (a wasm
   * memory), so the reads can bypass the page cache. Returns the non-zero pages.
   */
  async load(slot: number, into: Uint8Array, aligned = false): Promise<number[]> {
    const count = this.asm.spaceSizes.get(slot) ?? 0;
    const chunks = this.macs.slots.get(slot)?.tags ?? [];
    if (into.length < count * PAGE_SIZE)
      throw new RangeError(`slot ${slot}: ${count} pages do not fit ${into.length} bytes`);
    const end = (k: number): number => Math.min(count, (k + 1) * CHUNK_PAGES) * PAGE_SIZE;
    const live: number[] = [];
    const check = (k: number): void => {
      const data = into.subarray(k * CHUNK_BYTES, end(k));
      if (!timingSafeEqual(this.macs.mac.tag(slot, k, data), chunks[k]!))
        throw this.signed
          ? new CheckpointError(
              'tampered',
              `checkpoint image failed authentication: chunk ${k} of frame space ${slot} does not match its MAC (it was modified, or the key is wrong)`,
            )
          : corrupted(`chunk ${k} of frame space ${slot} does not match its digest`);
      const last = Math.min(count, (k + 1) * CHUNK_PAGES);
      for (let p = k * CHUNK_PAGES; p < last; p++)
        if (!isZeroPage(into.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))) {
          live.push(p);
          this.present.set(slot, p, PRESENT);
        }
    };
    const extents: Array<{ into: Uint8Array; pos: number; from: number; to: number }> = [];
    for (let k = 0; k < chunks.length;) {
      if (!chunks[k]) {
        k++;
        continue;
      }
      let j = k + 1;
      while (j < chunks.length && chunks[j] && j - k < READ_CHUNKS) j++;
      extents.push({
        into: into.subarray(k * CHUNK_BYTES, end(j - 1)),
        pos: pageOffset(slot, k * CHUNK_PAGES),
        from: k,
        to: j,
      });
      k = j;
    }
    // Each extent is checked as soon as it is in, while the others are still read.
    await readExtents(aligned && this.direct >= 0 ? this.direct : this.fd, extents, (e) => {
      for (let k = e.from; k < e.to; k++) check(k);
    });
    live.sort((a, b) => a - b);
    return live;
  }

  /** Slot `slot`'s `count` pages into a buffer of their own: its non-zero pages by number (null: none). */
  async loadPages(slot: number, count: number): Promise<Map<number, Buffer> | null> {
    const buf = Buffer.alloc(count * PAGE_SIZE);
    const live = await this.load(slot, buf);
    if (live.length === 0) return null;
    return new Map(live.map((p) => [p, buf.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)]));
  }

  /** The checkpoint with `spaces` as the caller loaded them, after checking VERIFY. */
  result(spaces: Map<number, Map<number, Buffer>>): Checkpoint {
    for (const [slot, pages] of spaces) this.asm.spaces.set(slot, pages);
    return this.asm.result('image', this.size, this.signed, this.present);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
    if (this.direct >= 0) fs.closeSync(this.direct);
  }
}

/** Reads a whole image into memory (buffers), verifying its metadata, every chunk and VERIFY. */
export async function readImage(path: string, opts: DecoderOptions = {}): Promise<Checkpoint> {
  const img = ImageReader.open(path, opts);
  try {
    const spaces = new Map<number, Map<number, Buffer>>();
    for (const [slot, count] of [...img.spaceSizes].sort((a, b) => a[0] - b[0])) {
      const m = await img.loadPages(slot, count);
      if (m) spaces.set(slot, m);
    }
    return img.result(spaces);
  } finally {
    img.close();
  }
}
