// Typed records of the checkpoint stream (DESIGN.md section 4) on top of the record
// layer: payload encodings, the VERIFY definition, and StreamWriter.
import { createHash, hash } from 'node:crypto';
import { PAGE_SIZE, PAGES_PER_SLOT } from '../checkpoint/frames.js';
import { CheckpointError } from './errors.js';
import { RecordEncoder, RecordType, type Rec } from './records.js';

export const FORMAT_VERSION = 1;
export const MAX_PAGES_PER_RECORD = 1024;

export type CheckpointKind = 'checkpoint' | 'migration' | 'fork';

export interface StreamHeader {
  format: number;
  pageSize: number;
  /** WASM features the VM needs, e.g. ["bulk-memory", "mutable-globals"]. */
  features: string[];
  vmId: string;
  kind: CheckpointKind;
  /** ISO 8601. */
  createdAt: string;
  kernelVersion: string;
}

export enum PageKind {
  ZERO = 0,
  RAW = 1,
  /** Reserved: not implemented yet, refused by readers. */
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
  /** null = all-zero page. A view into the record payload. */
  data: Buffer | null;
}

/** Slot -> number of pages in that frame space. */
export type SpaceSizes = Record<number, number>;

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

const asBuffer = (d: Uint8Array): Buffer =>
  Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);

export const isZeroPage = (data: Uint8Array): boolean => ZERO_PAGE.equals(asBuffer(data));

const corrupted = (what: string): CheckpointError => new CheckpointError('corrupted', `checkpoint is corrupted: ${what}`);

// ---- HEADER ----

export function encodeHeader(h: StreamHeader): Buffer {
  return Buffer.from(JSON.stringify(h), 'utf8');
}

export function decodeHeader(payload: Buffer): StreamHeader {
  const h = parseJson(payload, 'HEADER') as Partial<StreamHeader> | null;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw corrupted('HEADER is not a JSON object');
  if (h.format !== FORMAT_VERSION) {
    throw new CheckpointError('unsupported', `unsupported checkpoint format version ${JSON.stringify(h.format)} (this roam reads version ${FORMAT_VERSION})`);
  }
  if (h.pageSize !== PAGE_SIZE) {
    throw new CheckpointError('unsupported', `unsupported checkpoint page size ${JSON.stringify(h.pageSize)} (this roam uses ${PAGE_SIZE})`);
  }
  if (!Array.isArray(h.features) || !h.features.every((f) => typeof f === 'string')) throw corrupted('HEADER.features is not a list of strings');
  for (const k of ['vmId', 'kind', 'createdAt', 'kernelVersion'] as const) {
    if (typeof h[k] !== 'string') throw corrupted(`HEADER.${k} is not a string`);
  }
  if (!['checkpoint', 'migration', 'fork'].includes(h.kind!)) throw corrupted(`HEADER.kind ${JSON.stringify(h.kind)} is unknown`);
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

export const moduleHash = (wasm: Uint8Array): string => createHash('sha256').update(wasm).digest('hex');

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
  const meta = parseJson(payload.subarray(4, 4 + n), 'MODULE metadata') as { hash?: unknown } | null;
  if (typeof meta?.hash !== 'string') throw corrupted('MODULE metadata has no hash');
  const bytes = payload.subarray(4 + n);
  const actual = moduleHash(bytes);
  if (actual !== meta.hash) {
    throw new CheckpointError('module-hash', `checkpoint MODULE hash mismatch: recorded ${meta.hash}, content hashes to ${actual}`);
  }
  return { hash: actual, bytes };
}

// ---- PAGES ----

function checkFrame(slot: number, page: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot > 0xffffffff) throw new RangeError(`bad slot ${slot}`);
  if (!Number.isInteger(page) || page < 0 || page >= PAGES_PER_SLOT) throw new RangeError(`bad page ${page} (slot ${slot})`);
}

/** One PAGES payload; copies the page bytes now, so callers may pass live memory views. */
export function encodePages(batch: readonly PageEntry[]): Buffer {
  if (batch.length > MAX_PAGES_PER_RECORD) throw new RangeError(`PAGES record holds at most ${MAX_PAGES_PER_RECORD} pages, got ${batch.length}`);
  let size = 4;
  const zero: boolean[] = batch.map((e) => {
    checkFrame(e.slot, e.page);
    if (e.data && e.data.length !== PAGE_SIZE) throw new RangeError(`page ${e.slot}:${e.page} has ${e.data.length} bytes, expected ${PAGE_SIZE}`);
    const z = e.data === null || isZeroPage(e.data);
    size += 9 + (z ? 0 : PAGE_SIZE);
    return z;
  });
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32LE(batch.length, 0);
  let at = 4;
  batch.forEach((e, i) => {
    out.writeUInt32LE(e.slot, at);
    out.writeUInt32LE(e.page, at + 4);
    out[at + 8] = zero[i] ? PageKind.ZERO : PageKind.RAW;
    at += 9;
    if (!zero[i]) {
      out.set(e.data!, at);
      at += PAGE_SIZE;
    }
  });
  return out;
}

export function decodePages(payload: Buffer): DecodedPage[] {
  if (payload.length < 4) throw corrupted('PAGES record too short');
  const count = payload.readUInt32LE(0);
  if (count > MAX_PAGES_PER_RECORD) throw corrupted(`PAGES record claims ${count} pages (max ${MAX_PAGES_PER_RECORD})`);
  const out: DecodedPage[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 9 > payload.length) throw corrupted('PAGES record ends inside a page entry');
    const slot = payload.readUInt32LE(at);
    const page = payload.readUInt32LE(at + 4);
    const kind = payload[at + 8]!;
    at += 9;
    if (page >= PAGES_PER_SLOT) throw corrupted(`PAGES entry has page number ${page} >= ${PAGES_PER_SLOT}`);
    if (kind === PageKind.ZERO) {
      out.push({ slot, page, data: null });
    } else if (kind === PageKind.RAW) {
      if (at + PAGE_SIZE > payload.length) throw corrupted('PAGES record ends inside page data');
      out.push({ slot, page, data: payload.subarray(at, at + PAGE_SIZE) });
      at += PAGE_SIZE;
    } else if (kind === PageKind.LZ4) {
      throw new CheckpointError('unsupported', 'checkpoint uses LZ4-compressed pages, which this roam does not support yet');
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
    if (!Number.isInteger(n) || n < 0 || n > PAGES_PER_SLOT) throw new RangeError(`bad page count ${n} for slot ${slot}`);
  }
  return Buffer.from(JSON.stringify(spaces), 'utf8');
}

export function decodeSpaces(payload: Buffer): Map<number, number> {
  const j = parseJson(payload, 'SPACES');
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw corrupted('SPACES is not a JSON object');
  const out = new Map<number, number>();
  for (const [k, v] of Object.entries(j)) {
    const slot = Number(k);
    if (!/^\d+$/.test(k) || slot > 0xffffffff) throw corrupted(`SPACES has bad slot ${JSON.stringify(k)}`);
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > PAGES_PER_SLOT) throw corrupted(`SPACES has bad page count for slot ${k}`);
    out.set(slot, v as number);
  }
  return out;
}

// ---- VERIFY ----

/** SHA-256 of one 4096-byte page. */
// One-shot hashing: per-page calls dominate checkpoint time, and this avoids a Hash object each.
export const pageDigest = (data: Uint8Array): Buffer => hash('sha256', data, 'buffer') as unknown as Buffer;

/**
 * VERIFY = SHA-256(kernel bytes || for each non-zero page in ascending (slot, page)
 * order: u32 LE slot, u32 LE page, 32-byte pageDigest). The caller must pass the
 * digests of non-zero pages only, already sorted (the page cleaner walks frames in
 * order anyway; sorting here would cost a copy of every digest). Sortedness is
 * checked as they stream by, and out-of-order input throws.
 */
export function computeVerify(kernel: Uint8Array, digests: Iterable<readonly [number, number, Uint8Array]>): Buffer {
  const h = createHash('sha256').update(kernel);
  const frame = Buffer.alloc(8);
  let prevSlot = -1;
  let prevPage = -1;
  for (const [slot, page, d] of digests) {
    if (slot < prevSlot || (slot === prevSlot && page <= prevPage)) {
      throw new Error(`computeVerify: digests not in ascending (slot, page) order at ${slot}:${page} after ${prevSlot}:${prevPage}`);
    }
    prevSlot = slot;
    prevPage = page;
    frame.writeUInt32LE(slot, 0);
    frame.writeUInt32LE(page, 4);
    h.update(frame).update(d);
  }
  return h.digest();
}

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
      if (rec.payload.length !== 32) throw corrupted(`VERIFY record has ${rec.payload.length} bytes, expected 32`);
      return { type: RecordType.VERIFY, verify: rec.payload };
    case RecordType.SPACES:
      return { type: RecordType.SPACES, spaces: decodeSpaces(rec.payload) };
    default:
      return undefined;
  }
}

// ---- writer ----

export type Sink = (chunk: Buffer) => void | Promise<void>;

/**
 * Writes a checkpoint stream to any sink. Each call encodes synchronously (so page
 * views are copied at call time) and queues the bytes; the sink sees chunks in call
 * order even if calls are not awaited. A sink failure fails every later call.
 */
export class StreamWriter {
  private readonly enc: RecordEncoder;
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private state: 'new' | 'open' | 'ended' = 'new';
  /** Bytes handed to the sink (completed writes). */
  bytesWritten = 0;
  /** Page entries written, zero pages included. */
  pagesWritten = 0;

  constructor(
    private readonly sink: Sink,
    opts: { key?: Buffer } = {},
  ) {
    this.enc = new RecordEncoder({ key: opts.key });
  }

  header(h: StreamHeader): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error('StreamWriter: HEADER must be the first record'));
    if (h.format !== FORMAT_VERSION || h.pageSize !== PAGE_SIZE) {
      return Promise.reject(new Error(`StreamWriter: header must have format ${FORMAT_VERSION} and pageSize ${PAGE_SIZE}`));
    }
    this.state = 'open';
    return this.record(RecordType.HEADER, encodeHeader(h));
  }

  module(wasm: Uint8Array): Promise<void> {
    return this.record(RecordType.MODULE, encodeModule(wasm));
  }

  /** Splits the batch into PAGES records of at most MAX_PAGES_PER_RECORD entries. */
  pages(batch: readonly PageEntry[]): Promise<void> {
    const bufs: Buffer[] = [];
    try {
      this.open();
      for (let i = 0; i < batch.length; i += MAX_PAGES_PER_RECORD) {
        bufs.push(this.enc.encode(RecordType.PAGES, encodePages(batch.slice(i, i + MAX_PAGES_PER_RECORD))));
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.queue(bufs, batch.length);
  }

  spaces(s: SpaceSizes): Promise<void> {
    return this.record(RecordType.SPACES, encodeSpaces(s));
  }

  kernel(state: Uint8Array): Promise<void> {
    return this.record(RecordType.KERNEL, state);
  }

  verify(digest: Uint8Array): Promise<void> {
    if (digest.length !== 32) return Promise.reject(new RangeError(`VERIFY digest must be 32 bytes, got ${digest.length}`));
    return this.record(RecordType.VERIFY, digest);
  }

  end(): Promise<void> {
    let buf: Buffer;
    try {
      this.open();
      buf = this.enc.end();
      this.state = 'ended';
    } catch (e) {
      return Promise.reject(e);
    }
    return this.queue([buf], 0);
  }

  /** Resolves when everything queued so far reached the sink. */
  flush(): Promise<void> {
    return this.tail.then(() => {
      if (this.failure !== undefined) throw this.failure;
    });
  }

  private open(): void {
    if (this.state === 'new') throw new Error('StreamWriter: HEADER must be the first record');
    if (this.state === 'ended') throw new Error('StreamWriter: stream already ended');
  }

  private record(type: RecordType, payload: Uint8Array): Promise<void> {
    let buf: Buffer;
    try {
      if (type !== RecordType.HEADER) this.open();
      buf = this.enc.encode(type, payload);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.queue([buf], 0);
  }

  private queue(bufs: Buffer[], pages: number): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.failure !== undefined) throw this.failure;
      try {
        for (const b of bufs) {
          await this.sink(b);
          this.bytesWritten += b.length;
        }
        this.pagesWritten += pages;
      } catch (e) {
        this.failure = e;
        throw e;
      }
    };
    const p = this.tail.then(run);
    // Keep the chain alive without an unhandled rejection; callers get p itself.
    this.tail = p.catch(() => undefined);
    return p;
  }
}
