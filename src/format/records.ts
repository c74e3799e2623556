// The record layer of a roam checkpoint stream (DESIGN.md section 4): magic, then
// length-prefixed typed records, ending with an END record that carries a digest
// (SHA-256 or HMAC-SHA256) of every byte before it. Follows the Xen
// libxc-migration-stream v2 convention: bit 31 of the type marks a record that a
// reader may skip when it does not know it; unknown mandatory records are refused.
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';
import { CheckpointError } from './errors.js';
import { ByteQueue } from '../util/byte-queue.js';

export const STREAM_MAGIC = Buffer.from('ROAMSTRM', 'latin1');
export const RECORD_HEADER_SIZE = 8;
/** A record whose type has this bit set may be skipped by readers that do not know it. */
export const OPTIONAL_RECORD = 0x80000000;
/** Bounds the memory a reader commits to a single record before it has seen it. */
export const MAX_RECORD_PAYLOAD = 64 * 1024 * 1024;
export const DIGEST_SIZE = 32;
export const KEY_SIZE = 32;

export enum RecordType {
  HEADER = 1,
  MODULE = 2,
  PAGES = 3,
  KERNEL = 4,
  VERIFY = 5,
  END = 6,
  SPACES = 7,
  // 8.. reserved for encryption and later additions.
}

export enum EndMode {
  SHA256 = 0,
  HMAC_SHA256 = 1,
  /**
   * No digest (32 zero bytes): the stream travels over a channel that authenticates
   * every byte and its order (the migration channel's AES-GCM frames), so hashing it
   * again would only cost time. Accepted only by a reader told it is on such a channel.
   */
  TRANSPORT = 2,
}

/** Mandatory record types this build understands. */
export const KNOWN_RECORD_TYPES: ReadonlySet<number> = new Set(
  Object.values(RecordType).filter((v): v is number => typeof v === 'number'),
);

export interface Rec {
  type: number;
  payload: Buffer;
  /** Byte offset of the record header in the stream (for error messages). */
  offset: number;
}

export const isOptionalType = (type: number): boolean => (type & OPTIONAL_RECORD) !== 0;

export const recordTypeName = (type: number): string =>
  RecordType[type] ?? (isOptionalType(type) ? `optional 0x${type.toString(16)}` : String(type));

function checkKey(key: Buffer): void {
  if (key.length !== KEY_SIZE)
    throw new Error(`checkpoint key must be ${KEY_SIZE} bytes, got ${key.length}`);
}

/** Running digest of a stream: HMAC when keyed, else plain SHA-256. */
const newDigest = (key: Buffer | undefined): Hash | Hmac =>
  key ? createHmac('sha256', key) : createHash('sha256');

export interface EncoderOptions {
  key?: Buffer;
  /** The stream goes over an authenticated channel: END carries no digest (EndMode.TRANSPORT). */
  transport?: boolean;
}

/**
 * Serialises records. The magic is emitted in front of the first record; every
 * emitted byte goes into the running digest that END carries.
 */
export class RecordEncoder {
  private readonly digest: Hash | Hmac | null;
  private readonly mode: EndMode;
  private started = false;
  private ended = false;
  /** Bytes emitted so far, magic included. */
  bytes = 0;

  constructor(opts: EncoderOptions = {}) {
    if (opts.key) checkKey(opts.key);
    if (opts.key && opts.transport)
      throw new Error(
        'RecordEncoder: a keyed stream carries its HMAC; transport mode is for unkeyed streams',
      );
    this.mode = opts.transport
      ? EndMode.TRANSPORT
      : opts.key
        ? EndMode.HMAC_SHA256
        : EndMode.SHA256;
    this.digest = opts.transport ? null : newDigest(opts.key);
  }

  /** One record (preceded by the magic if it is the first). */
  encode(type: number, payload: Uint8Array): Buffer {
    if (this.ended) throw new Error('RecordEncoder: record after END');
    if (type === RecordType.END) throw new Error('RecordEncoder: use end() to finish a stream');
    return this.emit(type, payload);
  }

  /**
   * One record whose payload was written after RECORD_HEADER_SIZE bytes of headroom
   * in `framed`: the header goes into the headroom, so the record costs no copy.
   */
  encodeFramed(type: number, framed: Buffer): Buffer {
    const payload = framed.subarray(RECORD_HEADER_SIZE);
    if (this.ended) throw new Error('RecordEncoder: record after END');
    if (type === RecordType.END) throw new Error('RecordEncoder: use end() to finish a stream');
    if (!this.started) return this.emit(type, payload);
    if (payload.length > MAX_RECORD_PAYLOAD) {
      throw new Error(
        `record ${recordTypeName(type)} too large: ${payload.length} bytes > ${MAX_RECORD_PAYLOAD}`,
      );
    }
    framed.writeUInt32LE(type >>> 0, 0);
    framed.writeUInt32LE(payload.length, 4);
    return this.take(framed);
  }

  /** The END record; the digest covers everything emitted before it. */
  end(): Buffer {
    if (this.ended) throw new Error('RecordEncoder: END emitted twice');
    const prefix = this.started ? Buffer.alloc(0) : this.take(STREAM_MAGIC);
    this.started = true;
    const payload = Buffer.alloc(1 + DIGEST_SIZE);
    payload[0] = this.mode;
    this.digest?.digest().copy(payload, 1);
    this.ended = true;
    const head = recordHead(RecordType.END, payload.length);
    this.bytes += head.length + payload.length;
    return Buffer.concat([prefix, head, payload]);
  }

  private emit(type: number, payload: Uint8Array): Buffer {
    if (payload.length > MAX_RECORD_PAYLOAD) {
      throw new Error(
        `record ${recordTypeName(type)} too large: ${payload.length} bytes > ${MAX_RECORD_PAYLOAD}`,
      );
    }
    const parts: Buffer[] = [];
    if (!this.started) {
      parts.push(this.take(STREAM_MAGIC));
      this.started = true;
    }
    parts.push(this.take(recordHead(type, payload.length)));
    parts.push(this.take(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)));
    return Buffer.concat(parts);
  }

  private take(b: Buffer): Buffer {
    this.digest?.update(b);
    this.bytes += b.length;
    return b;
  }
}

function recordHead(type: number, length: number): Buffer {
  const h = Buffer.alloc(RECORD_HEADER_SIZE);
  h.writeUInt32LE(type >>> 0, 0);
  h.writeUInt32LE(length, 4);
  return h;
}

export interface DecoderOptions {
  key?: Buffer;
  /** Accept an unsigned (mode 0) stream even though a key was given. Off by default: a key means "I expect authenticity". */
  allowUnsigned?: boolean;
  /** Mandatory types to accept (default: all of RecordType). */
  known?: ReadonlySet<number>;
  /** Shown in error messages instead of "checkpoint". */
  name?: string;
  /**
   * The bytes arrive over a channel that authenticates them and their order (a
   * migration): expect an END of mode TRANSPORT and hash nothing. Every other END
   * mode is then refused, and without this option TRANSPORT is.
   */
  transport?: boolean;
}

const KEY_HINT = 'pass --key FILE (default key file: $ROAM_HOME/checkpoint.key)';

/**
 * Incremental record parser: feed it chunks of any size, get back the complete
 * records. Unknown optional records are skipped (counted in `skipped`); END is
 * verified and consumed, not returned.
 */
export class RecordDecoder {
  private readonly sha: Hash | undefined;
  private readonly hmac: Hmac | undefined;
  private readonly known: ReadonlySet<number>;
  private readonly name: string;
  private readonly allowUnsigned: boolean;
  private readonly transport: boolean;
  private readonly queue = new ByteQueue();
  private magicSeen = false;
  private pending: { type: number; length: number; offset: number } | undefined;
  /** Offset of the next unconsumed byte. */
  private consumed = 0;
  /** Total bytes pushed. */
  bytes = 0;
  skipped = 0;
  ended = false;
  /** Set at END: whether the stream carried an HMAC. */
  signed = false;

  constructor(opts: DecoderOptions = {}) {
    if (opts.key) checkKey(opts.key);
    this.known = opts.known ?? KNOWN_RECORD_TYPES;
    this.name = opts.name ?? 'checkpoint';
    this.allowUnsigned = opts.allowUnsigned ?? false;
    this.transport = opts.transport ?? false;
    if (this.transport && opts.key)
      throw new Error('RecordDecoder: transport mode takes no key (the channel authenticates)');
    // Without a key only mode 0 can be verified; with one, mode 1 (and mode 0 only if allowed).
    this.hmac = opts.key ? createHmac('sha256', opts.key) : undefined;
    this.sha =
      !this.transport && (!opts.key || this.allowUnsigned) ? createHash('sha256') : undefined;
  }

  push(chunk: Buffer): Rec[] {
    if (chunk.length === 0) return [];
    if (this.ended) throw this.trailing(this.bytes);
    this.queue.push(chunk);
    this.bytes += chunk.length;
    const out: Rec[] = [];
    for (;;) {
      if (!this.magicSeen) {
        // Refuse a wrong magic as soon as the bytes disagree, not only after 8 bytes.
        const n = Math.min(this.queue.length, STREAM_MAGIC.length);
        const head = this.queue.peek(n);
        if (!head.equals(STREAM_MAGIC.subarray(0, n))) {
          throw new CheckpointError(
            'not-roam',
            `not a roam ${this.name}: bad magic (expected "ROAMSTRM")`,
          );
        }
        if (n < STREAM_MAGIC.length) break;
        this.hashed(this.take(STREAM_MAGIC.length));
        this.magicSeen = true;
      }
      if (!this.pending) {
        if (this.queue.length < RECORD_HEADER_SIZE) break;
        const offset = this.consumed;
        const head = this.take(RECORD_HEADER_SIZE);
        const type = head.readUInt32LE(0);
        const length = head.readUInt32LE(4);
        if (length > MAX_RECORD_PAYLOAD) {
          throw new CheckpointError(
            'too-large',
            `${this.name} record ${recordTypeName(type)} at offset ${offset} claims ${length} bytes, more than the ${MAX_RECORD_PAYLOAD}-byte limit (corrupted?)`,
          );
        }
        if (type !== RecordType.END && !isOptionalType(type) && !this.known.has(type)) {
          throw new CheckpointError(
            'unknown-record',
            `${this.name} has unknown mandatory record type ${type} at offset ${offset} (written by a newer roam, or corrupted)`,
          );
        }
        // END's own header is not covered by the digest it carries.
        if (type !== RecordType.END) this.hashed(head);
        this.pending = { type, length, offset };
      }
      const p = this.pending;
      if (this.queue.length < p.length) break;
      const payload = this.take(p.length);
      this.pending = undefined;
      if (p.type === RecordType.END) {
        this.checkEnd(payload, p.offset);
        this.ended = true;
        if (this.queue.length > 0) throw this.trailing(this.consumed);
        break;
      }
      this.hashed(payload);
      if (isOptionalType(p.type) && !this.known.has(p.type)) {
        this.skipped++;
        continue;
      }
      out.push({ type: p.type, payload, offset: p.offset });
    }
    return out;
  }

  /** Call at end of input: throws unless a complete, verified END was seen. */
  finish(): void {
    if (this.ended) return;
    if (this.bytes === 0)
      throw new CheckpointError('not-roam', `not a roam ${this.name}: it is empty`);
    if (!this.magicSeen)
      throw new CheckpointError('not-roam', `not a roam ${this.name}: only ${this.bytes} bytes`);
    const where = this.pending
      ? `in the middle of a ${recordTypeName(this.pending.type)} record`
      : 'before the END record';
    throw new CheckpointError(
      'truncated',
      `${this.name} is truncated: input ended after ${this.bytes} bytes, ${where}`,
    );
  }

  private checkEnd(payload: Buffer, offset: number): void {
    if (payload.length !== 1 + DIGEST_SIZE) {
      throw new CheckpointError(
        'corrupted',
        `${this.name} is corrupted: END record at offset ${offset} has ${payload.length} bytes, expected ${1 + DIGEST_SIZE}`,
      );
    }
    const mode = payload[0];
    const want = payload.subarray(1);
    if (this.transport !== (mode === EndMode.TRANSPORT)) {
      throw new CheckpointError(
        'corrupted',
        this.transport
          ? `${this.name} is corrupted: END has digest mode ${mode}, expected ${EndMode.TRANSPORT} (authenticated by the channel)`
          : `${this.name} is corrupted: END says the channel authenticated the stream (mode ${EndMode.TRANSPORT}), which this reader cannot know; refusing it`,
      );
    }
    if (mode === EndMode.TRANSPORT) {
      if (!want.equals(Buffer.alloc(DIGEST_SIZE)))
        throw new CheckpointError(
          'corrupted',
          `${this.name} is corrupted: END of mode ${mode} must carry no digest`,
        );
    } else if (mode === EndMode.SHA256) {
      if (!this.sha) {
        throw new CheckpointError(
          'unsigned',
          `${this.name} is not signed (no HMAC) but a key was given; refusing it, since anyone could have written it (--allow-unsigned accepts it)`,
        );
      }
      if (!timingSafeEqual(this.sha.digest(), want)) {
        throw new CheckpointError(
          'corrupted',
          `${this.name} is corrupted: SHA-256 digest mismatch`,
        );
      }
    } else if (mode === EndMode.HMAC_SHA256) {
      if (!this.hmac)
        throw new CheckpointError(
          'key-required',
          `${this.name} is signed (HMAC-SHA256): ${KEY_HINT}`,
        );
      if (!timingSafeEqual(this.hmac.digest(), want)) {
        throw new CheckpointError(
          'tampered',
          `${this.name} failed authentication (HMAC mismatch): it was modified, or the key is wrong`,
        );
      }
      this.signed = true;
    } else {
      throw new CheckpointError(
        'corrupted',
        `${this.name} is corrupted: unknown END digest mode ${mode}`,
      );
    }
  }

  private trailing(at: number): CheckpointError {
    return new CheckpointError(
      'trailing',
      `${this.name} has unexpected bytes after the END record (at offset ${at})`,
    );
  }

  private hashed(b: Buffer): void {
    this.sha?.update(b);
    this.hmac?.update(b);
  }

  /** Removes n queued bytes, counting them as consumed. */
  private take(n: number): Buffer {
    this.consumed += n;
    return this.queue.take(n);
  }
}
