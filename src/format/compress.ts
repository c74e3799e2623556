// LZ4 for PAGES entries of kind LZ4: the one place roam touches the LZ4 library
// (lz4-napi: lz4_flex compiled to a prebuilt N-API addon, no build step at install;
// where addons may not load — a VM that the node daemon starts under Node's
// permission model — lz4-wasm-nodejs: the same lz4_flex compiled to WebAssembly,
// with the same size-prefixed calls).
// On the wire a compressed page is a plain LZ4 *block* (the block format of the LZ4
// spec: no frame, no checksum, no size prefix), so any LZ4 implementation reads it;
// the decoded size is always known to the reader (one page). lz4-napi's block calls
// put a u32 LE decoded size in front of the block, which these wrappers strip and
// supply, so a stream never decides how much the reader allocates.
import { createRequire } from 'node:module';
import { PAGE_SIZE } from '../memory/frames.js';

// Loaded on the first page that is compressed or decoded, not at start-up: the
// addon alone costs a tiny program's start-up some 15 ms. Loading an addon throws
// under --experimental-permission without --allow-addons (which the daemon never
// grants: an addon could undo the sandbox).
type Codec = { name: string; compress(b: Buffer): Uint8Array; decompress(b: Buffer): Uint8Array };
let loaded: Codec | undefined;
function codec(): Codec {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  try {
    const m = require('lz4-napi') as typeof import('lz4-napi');
    loaded = { name: 'lz4-napi', compress: m.compressSync, decompress: m.uncompressSync };
  } catch {
    const m = require('lz4-wasm-nodejs') as typeof import('lz4-wasm-nodejs');
    loaded = { name: 'lz4-wasm-nodejs', compress: m.compress, decompress: m.decompress };
  }
  return loaded;
}
/** The LZ4 implementation this process loads. */
export const lz4Codec = (): string => codec().name;

/** A compressed page is written as LZ4 only if its entry (u32 length + block) takes at most this many bytes; otherwise RAW. */
export const LZ4_MAX_ENTRY = PAGE_SIZE - 64;

/** Largest decoded size lz4Decompress accepts (it is told the size; it never reads it from the data). */
const MAX_DECODED = 64 * 1024 * 1024;

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

const asBuffer = (d: Uint8Array): Buffer =>
  Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);

/** `data` as one LZ4 block (no size prefix). */
export function lz4Compress(data: Uint8Array): Buffer {
  // lz4-napi returns u32 LE size || block.
  return asBuffer(codec().compress(asBuffer(data))).subarray(4);
}

/**
 * Decodes one LZ4 block that must expand to exactly `expectedSize` bytes, into a fresh
 * Buffer. Throws an Error (never crashes) on a malformed block or any other size.
 */
export function lz4Decompress(block: Uint8Array, expectedSize: number): Buffer {
  if (!Number.isInteger(expectedSize) || expectedSize < 0 || expectedSize > MAX_DECODED) {
    throw new RangeError(`lz4Decompress: bad expected size ${expectedSize}`);
  }
  const framed = Buffer.allocUnsafe(4 + block.length);
  framed.writeUInt32LE(expectedSize, 0);
  framed.set(block, 4);
  let out: Uint8Array;
  try {
    // Refuses a block that would write past expectedSize; returns less if it decodes to less.
    out = codec().decompress(framed);
  } catch (e) {
    // The WebAssembly build reports a short block as an error; say it as below.
    const short = /actual (\d+), expected/.exec(String(e));
    if (short) throw new Error(`LZ4 block decodes to ${short[1]} bytes, expected ${expectedSize}`);
    throw new Error(`malformed LZ4 block (${e instanceof Error ? e.message : String(e)})`);
  }
  if (out.length !== expectedSize)
    throw new Error(`LZ4 block decodes to ${out.length} bytes, expected ${expectedSize}`);
  return asBuffer(out);
}

/** Bytes a non-zero page takes in a PAGES entry after its 9-byte head, given its LZ4 block (or none). */
export const pageEntryBytes = (block: Uint8Array | null): number =>
  block !== null && 4 + block.length <= LZ4_MAX_ENTRY ? 4 + block.length : PAGE_SIZE;

export interface CompressionGain {
  /** Bytes the sample's pages would take with compression on / without (1 = no gain; pages that do not shrink count as RAW). */
  ratio: number;
  /** Measured compression time per page, in microseconds. */
  compressUsPerPage: number;
}

/**
 * Compresses a few sample pages (all-zero ones are skipped: they cost nothing either
 * way) and reports what compression would save and what it costs here. With no
 * usable sample: { ratio: 1, compressUsPerPage: 0 }, i.e. no gain.
 */
export function compressionGain(sample: readonly Uint8Array[]): CompressionGain {
  const pages = sample.filter((p) => {
    if (p.length !== PAGE_SIZE)
      throw new RangeError(
        `compressionGain: sample page has ${p.length} bytes, expected ${PAGE_SIZE}`,
      );
    return !ZERO_PAGE.equals(asBuffer(p));
  });
  if (pages.length === 0) return { ratio: 1, compressUsPerPage: 0 };
  lz4Compress(pages[0]); // warm-up: the first call into the addon is not representative
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  for (const p of pages) bytes += pageEntryBytes(lz4Compress(p));
  const ns = Number(process.hrtime.bigint() - t0);
  return { ratio: bytes / (pages.length * PAGE_SIZE), compressUsPerPage: ns / 1000 / pages.length };
}

/**
 * Whether compressing pays on a link of `bytesPerSecond`: sending a page compressed
 * (ratio * PAGE_SIZE bytes, plus the time to compress it) beats sending it raw.
 */
export function compressionPays(gain: CompressionGain, bytesPerSecond: number): boolean {
  if (!(bytesPerSecond > 0)) return false;
  const raw = PAGE_SIZE / bytesPerSecond;
  return (gain.ratio * PAGE_SIZE) / bytesPerSecond + gain.compressUsPerPage / 1e6 < raw;
}
