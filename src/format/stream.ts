// Typed records of the checkpoint stream (DESIGN.md section 4) on top of the record
// layer: payload encodings, the VERIFY definition, and StreamWriter.
import { createHash } from 'node:crypto';
import { PAGE_SIZE, PAGES_PER_SLOT } from '../memory/frames.js';
import { lz4Compress, lz4Decompress, pageEntryBytes } from './compress.js';
import { CheckpointError } from './errors.js';
import { RecordType, type Rec } from './records.js';

/** 2: VERIFY is the incremental page sum of verify.ts (format 1 hashed sorted digests at END). */
// 3: a transport stream's VERIFY counts pages by presence, not content (verify.ts).
export const FORMAT_VERSION = 3;
export const MAX_PAGES_PER_RECORD = 1024;

export type CheckpointKind = 'checkpoint' | 'migration' | 'fork';

export interface StreamHeader {
  format: number;
  pageSize: number;
  /** WASM features the VM needs, e.g. ["bulk-memory", "mutable-globals"]. */
  features: readonly string[];
  vmId: string;
  kind: CheckpointKind;
  /** ISO 8601. */
  createdAt: string;
  kernelVersion: string;
}

export enum PageKind {
  ZERO = 0,
  RAW = 1,
  /** u32 LE length n, then an n-byte LZ4 block that decodes to exactly one page. */
  LZ4 = 2,
}

export interface PageEntry {
  slot: number;
  page: number;
  /** null (or all-zero bytes) = an all-zero page. */
  data: Uint8Array | null;
}

export interface DecodedPage {
  slot: number;
  page: number;
  /** null = all-zero page. RAW: a view into the record payload; LZ4: a fresh Buffer. */
  data: Buffer | null;
}

/** Slot -> number of pages in that frame space. */
export type SpaceSizes = Record<number, number>;

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

const asBuffer = (d: Uint8Array): Buffer =>
  Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);

export function isZeroPage(data: Uint8Array): boolean {
  // Most pages that are not zero have a non-zero byte among a few: those are told
  // apart without a call into native code (made for every page of a checkpoint).
  const d = data;
  if (
    d.length === PAGE_SIZE &&
    (d[0] | d[8] | d[256] | d[1024] | d[2048] | d[3072] | d[4088] | d[4095]) !== 0
  )
    return false;
  return ZERO_PAGE.equals(asBuffer(data));
}

const corrupted = (what: string): CheckpointError =>
  new CheckpointError('corrupted', `checkpoint is corrupted: ${what}`);

// ---- HEADER ----

export function encodeHeader(h: StreamHeader): Buffer {
  return Buffer.from(JSON.stringify(h), 'utf8');
}

export function decodeHeader(payload: Buffer): StreamHeader {
  const h = parseJson(payload, 'HEADER') as Partial<StreamHeader> | null;
  if (typeof h !== 'object' || h === null || Array.isArray(h))
    throw corrupted('HEADER is not a JSON object');
  if (h.format !== FORMAT_VERSION) {
    throw new CheckpointError(
      'unsupported',
      `unsupported checkpoint format version ${JSON.stringify(h.format)} (this roam reads version ${FORMAT_VERSION})`,
    );
  }
  if (h.pageSize !== PAGE_SIZE) {
    throw new CheckpointError(
      'unsupported',
      `unsupported checkpoint page size ${JSON.stringify(h.pageSize)} (this roam uses ${PAGE_SIZE})`,
    );
  }
  if (!Array.isArray(h.features) || !h.features.every((f) => typeof f === 'string'))
    throw corrupted('HEADER.features is not a list of strings');
  for (const k of ['vmId', 'kind', 'createdAt', 'kernelVersion'] as const) {
    if (typeof h[k] !== 'string') throw corrupted(`HEADER.${k} is not a string`);
  }
  if (!['checkpoint', 'migration', 'fork'].includes(h.kind!))
    throw corrupted(`HEADER.kind ${JSON.stringify(h.kind)} is unknown`);
  return h as StreamHeader;
}

function parseJson(payload: Buffer, what: string): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    throw corrupted(`${what} is not valid JSON`);
  }
}

// ---- MODULE ----

export const moduleHash = (wasm: Uint8Array): string =>
  createHash('sha256').update(wasm).digest('hex');

export function encodeModule(wasm: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify({ hash: moduleHash(wasm) }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length, 0);
  return Buffer.concat([len, json, asBuffer(wasm)]);
}

export function decodeModule(payload: Buffer): { hash: string; bytes: Buffer } {
  if (payload.length < 4) throw corrupted('MODULE record too short');
  const n = payload.readUInt32LE(0);
  if (4 + n > payload.length) throw corrupted('MODULE metadata length exceeds the record');
  const meta = parseJson(payload.subarray(4, 4 + n), 'MODULE metadata') as {
    hash?: unknown;
  } | null;
  if (typeof meta?.hash !== 'string') throw corrupted('MODULE metadata has no hash');
  const bytes = payload.subarray(4 + n);
  const actual = moduleHash(bytes);
  if (actual !== meta.hash) {
    throw new CheckpointError(
      'module-hash',
      `checkpoint MODULE hash mismatch: recorded ${meta.hash}, content hashes to ${actual}`,
    );
  }
  return { hash: actual, bytes };
}

// ---- PAGES ----

function checkFrame(slot: number, page: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot > 0xffffffff)
    throw new RangeError(`bad slot ${slot}`);
  if (!Number.isInteger(page) || page < 0 || page >= PAGES_PER_SLOT)
    throw new RangeError(`bad page ${page} (slot ${slot})`);
}

export interface EncodeOptions {
  /** LZ4-compress non-zero pages; a page whose entry would not shrink enough (see LZ4_MAX_ENTRY) stays RAW. */
  compress?: boolean;
}

interface EncodedPages {
  payload: Buffer;
  /** Non-zero pages in the batch. */
  nonZero: number;
  /** Bytes the non-zero pages' data took (PAGE_SIZE per RAW page, 4 + block per LZ4 page). */
  dataBytes: number;
}

/** PAGE_SIZE-byte page data (RAW), an LZ4 block (LZ4), or null (ZERO). */
type Body = { kind: PageKind.RAW; data: Uint8Array } | { kind: PageKind.LZ4; block: Buffer } | null;

/** @param headroom bytes left free in front of the payload (a record header goes there). */
export function encodePagesCounted(
  batch: readonly PageEntry[],
  compress: boolean,
  headroom = 0,
  /** Where the record goes (a reused buffer), given its size; default a new one. */
  alloc: (bytes: number) => Buffer = (n) => Buffer.allocUnsafe(n),
): EncodedPages & { framed: Buffer } {
  if (batch.length > MAX_PAGES_PER_RECORD)
    throw new RangeError(
      `PAGES record holds at most ${MAX_PAGES_PER_RECORD} pages, got ${batch.length}`,
    );
  let dataBytes = 0;
  let nonZero = 0;
  const bodies: Body[] = batch.map((e) => {
    checkFrame(e.slot, e.page);
    if (e.data && e.data.length !== PAGE_SIZE)
      throw new RangeError(
        `page ${e.slot}:${e.page} has ${e.data.length} bytes, expected ${PAGE_SIZE}`,
      );
    if (e.data === null || isZeroPage(e.data)) return null;
    nonZero++;
    if (compress) {
      const block = lz4Compress(e.data);
      const n = pageEntryBytes(block);
      dataBytes += n;
      if (n < PAGE_SIZE) return { kind: PageKind.LZ4, block };
    } else {
      dataBytes += PAGE_SIZE;
    }
    return { kind: PageKind.RAW, data: e.data };
  });
  const framed = alloc(headroom + 4 + 9 * batch.length + dataBytes);
  const out = framed.subarray(headroom);
  out.writeUInt32LE(batch.length, 0);
  let at = 4;
  batch.forEach((e, i) => {
    const b = bodies[i]!;
    out.writeUInt32LE(e.slot, at);
    out.writeUInt32LE(e.page, at + 4);
    out[at + 8] = b === null ? PageKind.ZERO : b.kind;
    at += 9;
    if (b?.kind === PageKind.RAW) {
      out.set(b.data, at);
      at += PAGE_SIZE;
    } else if (b?.kind === PageKind.LZ4) {
      out.writeUInt32LE(b.block.length, at);
      out.set(b.block, at + 4);
      at += 4 + b.block.length;
    }
  });
  return { payload: out, framed, nonZero, dataBytes };
}

/**
 * One PAGES payload; copies the page bytes now, so callers may pass live memory views.
 * All-zero pages are ZERO entries; the others RAW, or LZ4 with `compress` where it pays.
 */
export function encodePages(batch: readonly PageEntry[], opts: EncodeOptions = {}): Buffer {
  return encodePagesCounted(batch, opts.compress === true).payload;
}

export function decodePages(payload: Buffer): DecodedPage[] {
  if (payload.length < 4) throw corrupted('PAGES record too short');
  const count = payload.readUInt32LE(0);
  if (count > MAX_PAGES_PER_RECORD)
    throw corrupted(`PAGES record claims ${count} pages (max ${MAX_PAGES_PER_RECORD})`);
  const out: DecodedPage[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 9 > payload.length) throw corrupted('PAGES record ends inside a page entry');
    const slot = payload.readUInt32LE(at);
    const page = payload.readUInt32LE(at + 4);
    const kind = payload[at + 8];
    at += 9;
    if (page >= PAGES_PER_SLOT)
      throw corrupted(`PAGES entry has page number ${page} >= ${PAGES_PER_SLOT}`);
    if (kind === PageKind.ZERO) {
      out.push({ slot, page, data: null });
    } else if (kind === PageKind.RAW) {
      if (at + PAGE_SIZE > payload.length) throw corrupted('PAGES record ends inside page data');
      out.push({ slot, page, data: payload.subarray(at, at + PAGE_SIZE) });
      at += PAGE_SIZE;
    } else if (kind === PageKind.LZ4) {
      if (at + 4 > payload.length) throw corrupted('PAGES record ends inside an LZ4 page length');
      const n = payload.readUInt32LE(at);
      at += 4;
      if (n > payload.length - at)
        throw corrupted(
          `LZ4 page ${slot}:${page} claims ${n} bytes, more than the PAGES record holds`,
        );
      let data: Buffer;
      try {
        data = lz4Decompress(payload.subarray(at, at + n), PAGE_SIZE);
      } catch (e) {
        throw corrupted(`LZ4 page ${slot}:${page}: ${e instanceof Error ? e.message : String(e)}`);
      }
      out.push({ slot, page, data });
      at += n;
    } else {
      throw corrupted(`PAGES entry has unknown page kind ${kind}`);
    }
  }
  if (at !== payload.length) throw corrupted(`PAGES record has ${payload.length - at} extra bytes`);
  return out;
}

// ---- SPACES ----

export function encodeSpaces(spaces: SpaceSizes): Buffer {
  for (const [slot, n] of Object.entries(spaces)) {
    checkFrame(Number(slot), 0);
    if (!Number.isInteger(n) || n < 0 || n > PAGES_PER_SLOT)
      throw new RangeError(`bad page count ${n} for slot ${slot}`);
  }
  return Buffer.from(JSON.stringify(spaces), 'utf8');
}

export function decodeSpaces(payload: Buffer): Map<number, number> {
  const j = parseJson(payload, 'SPACES');
  if (typeof j !== 'object' || j === null || Array.isArray(j))
    throw corrupted('SPACES is not a JSON object');
  const out = new Map<number, number>();
  for (const [k, v] of Object.entries(j)) {
    const slot = Number(k);
    if (!/^\d+$/.test(k) || slot > 0xffffffff)
      throw corrupted(`SPACES has bad slot ${JSON.stringify(k)}`);
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > PAGES_PER_SLOT)
      throw corrupted(`SPACES has bad page count for slot ${k}`);
    out.set(slot, v as number);
  }
  return out;
}

// ---- VERIFY ----

// Defined in verify.ts (incremental since format 2); re-exported for the stream's users.
export { computeVerify, pageDigest, PageDigests, PRESENT } from './verify.js';

// ---- typed decoding ----

export type TypedRecord =
  | { type: RecordType.HEADER; header: StreamHeader }
  | { type: RecordType.MODULE; hash: string; bytes: Buffer }
  | { type: RecordType.PAGES; pages: DecodedPage[] }
  | { type: RecordType.KERNEL; kernel: Buffer }
  | { type: RecordType.VERIFY; verify: Buffer }
  | { type: RecordType.SPACES; spaces: Map<number, number> };

/** Parses a record's payload according to its type; undefined for types it has no payload format for. */
export function parseRecord(rec: Rec): TypedRecord | undefined {
  switch (rec.type) {
    case RecordType.HEADER:
      return { type: RecordType.HEADER, header: decodeHeader(rec.payload) };
    case RecordType.MODULE:
      return { type: RecordType.MODULE, ...decodeModule(rec.payload) };
    case RecordType.PAGES:
      return { type: RecordType.PAGES, pages: decodePages(rec.payload) };
    case RecordType.KERNEL:
      return { type: RecordType.KERNEL, kernel: rec.payload };
    case RecordType.VERIFY:
      if (rec.payload.length !== 32)
        throw corrupted(`VERIFY record has ${rec.payload.length} bytes, expected 32`);
      return { type: RecordType.VERIFY, verify: rec.payload };
    case RecordType.SPACES:
      return { type: RecordType.SPACES, spaces: decodeSpaces(rec.payload) };
    default:
      return undefined;
  }
}
