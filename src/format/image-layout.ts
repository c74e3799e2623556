// The disk image's layout (image.ts writes it, image-read.ts reads it): the
// superblock's fields, the metadata's own records, where each page lives.
import { frameOf, PAGE_SIZE, PAGES_PER_SLOT } from '../memory/frames.js';
import { alignedBuffer } from './direct.js';
import { CHUNK_PAGES } from './page-mac.js';
import { OPTIONAL_RECORD } from './records.js';
import type { PageEntry } from './stream.js';

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
export const EXTENT_BLOCKS = 32768; // longest ext4 extent, in 4 KiB blocks
export const CHUNKS_PER_SLOT = PAGES_PER_SLOT / CHUNK_PAGES;

/** Byte offset of page (slot, page) in an image. */
export function pageOffset(slot: number, page: number): number {
  const off = SUPERBLOCK_SIZE + frameOf(slot, page) * PAGE_SIZE;
  if (!Number.isSafeInteger(off))
    throw new RangeError(`frame ${slot}:${page} is beyond the largest image offset`);
  return off;
}

export const frameOffset = (frame: number): number => SUPERBLOCK_SIZE + frame * PAGE_SIZE;

/** Pages consecutive in the file and in one buffer. */
export interface Segment {
  first: number;
  buffer: ArrayBufferLike;
  offset: number;
  length: number;
}

/**
 * The batch's frames ascending, each once (its last entry wins), so chunks fill in
 * order. A page cleaner's batch is ascending already: then nothing is sorted.
 */
export function ordered(batch: readonly PageEntry[]): { frames: number[]; entries: PageEntry[] } {
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
export const zeroPage = (): Uint8Array => (zeros ??= alignedBuffer(PAGE_SIZE));
