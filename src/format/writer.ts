// StreamWriter: writes a checkpoint stream's records, in call order, to any sink.
import {
  encodeHeader,
  encodeModule,
  encodePagesCounted,
  encodeSpaces,
  FORMAT_VERSION,
  MAX_PAGES_PER_RECORD,
  type PageEntry,
  type SpaceSizes,
  type StreamHeader,
} from './stream.js';
import {
  isOptionalType,
  RECORD_HEADER_SIZE,
  RecordEncoder,
  RecordType,
  type EncoderOptions,
} from './records.js';
import { PAGE_SIZE } from '../memory/frames.js';
import { asError } from '../util/errors.js';

export type Sink = (chunk: Buffer) => void | Promise<void>;

/** The largest PAGES record (every page RAW), header included: what a reused buffer holds. */
const RECORD_BYTES = RECORD_HEADER_SIZE + 4 + MAX_PAGES_PER_RECORD * (9 + PAGE_SIZE);

/**
 * Writes a checkpoint stream to any sink. Each call encodes synchronously (so page
 * views are copied at call time) and queues the bytes; the sink sees chunks in call
 * order even if calls are not awaited. A sink failure fails every later call.
 */
export class StreamWriter {
  private readonly enc: RecordEncoder;
  private tail: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private state: 'new' | 'open' | 'ended' = 'new';
  /** Bytes handed to the sink (completed writes). */
  bytesWritten = 0;
  /** Page entries written, zero pages included. */
  pagesWritten = 0;
  /** PAGE_SIZE per non-zero page written: what their data would take uncompressed. */
  rawPageBytes = 0;
  /** Bytes the non-zero pages' data actually took (RAW: PAGE_SIZE, LZ4: 4 + block); compare with rawPageBytes. */
  pageDataBytes = 0;
  /** LZ4-compress pages from the next pages() call on (each page stays RAW where compression does not pay). */
  compress = false;

  /**
   * Buffers PAGES records were encoded in, free again (with `reuse`): a fresh 4 MiB
   * buffer per batch cost its page faults and, at 256 MiB a migration, a major
   * collection every few dozen milliseconds.
   */
  private readonly free: Buffer[] = [];
  private readonly reuse: boolean;

  /** @param opts.reuse the sink is done with a chunk once its promise resolves (it copies or encrypts it), so its buffer can take the next record */
  constructor(
    private readonly sink: Sink,
    opts: EncoderOptions & { reuse?: boolean } = {},
  ) {
    this.enc = new RecordEncoder(opts);
    this.reuse = opts.reuse === true;
  }

  header(h: StreamHeader): Promise<void> {
    if (this.state !== 'new')
      return Promise.reject(new Error('StreamWriter: HEADER must be the first record'));
    if (h.format !== FORMAT_VERSION || h.pageSize !== PAGE_SIZE) {
      return Promise.reject(
        new Error(
          `StreamWriter: header must have format ${FORMAT_VERSION} and pageSize ${PAGE_SIZE}`,
        ),
      );
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
    const counts = { pages: batch.length, raw: 0, data: 0 };
    const taken: Buffer[] = [];
    const alloc = (n: number): Buffer => {
      const i = this.free.findIndex((b) => b.length >= n);
      const b = i >= 0 ? this.free.splice(i, 1)[0] : Buffer.allocUnsafe(Math.max(n, RECORD_BYTES));
      taken.push(b);
      return b.subarray(0, n);
    };
    try {
      this.open();
      for (let i = 0; i < batch.length; i += MAX_PAGES_PER_RECORD) {
        const e = encodePagesCounted(
          batch.slice(i, i + MAX_PAGES_PER_RECORD),
          this.compress,
          RECORD_HEADER_SIZE,
          this.reuse ? alloc : undefined,
        );
        counts.raw += e.nonZero * PAGE_SIZE;
        counts.data += e.dataBytes;
        bufs.push(this.enc.encodeFramed(RecordType.PAGES, e.framed));
      }
    } catch (e) {
      this.free.push(...taken);
      return Promise.reject(asError(e));
    }
    const p = this.queue(bufs, counts);
    // Free again once the sink has them (on failure too: the stream is over then).
    if (taken.length)
      void p.then(
        () => this.free.push(...taken),
        () => undefined,
      );
    return p;
  }

  spaces(s: SpaceSizes): Promise<void> {
    return this.record(RecordType.SPACES, encodeSpaces(s));
  }

  kernel(state: Uint8Array): Promise<void> {
    return this.record(RecordType.KERNEL, state);
  }

  verify(digest: Uint8Array): Promise<void> {
    if (digest.length !== 32)
      return Promise.reject(new RangeError(`VERIFY digest must be 32 bytes, got ${digest.length}`));
    return this.record(RecordType.VERIFY, digest);
  }

  /** An optional record (OPTIONAL_RECORD set): a reader that does not know it skips it. */
  optional(type: number, payload: Uint8Array): Promise<void> {
    if (!isOptionalType(type))
      return Promise.reject(new RangeError(`record type ${type} is not optional`));
    return this.record(type, payload);
  }

  /** A mandatory record of a container's own type (the image's PAGE_MACS): readers that do not know it refuse the stream. */
  extra(type: number, payload: Uint8Array): Promise<void> {
    if (type <= RecordType.SPACES || isOptionalType(type))
      return Promise.reject(new RangeError(`record type ${type} is not a container's own`));
    return this.record(type, payload);
  }

  end(): Promise<void> {
    let buf: Buffer;
    try {
      this.open();
      buf = this.enc.end();
      this.state = 'ended';
    } catch (e) {
      return Promise.reject(asError(e));
    }
    return this.queue([buf]);
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

  private record(type: number, payload: Uint8Array): Promise<void> {
    let buf: Buffer;
    try {
      if (type !== RecordType.HEADER) this.open();
      buf = this.enc.encode(type, payload);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    return this.queue([buf]);
  }

  private queue(
    bufs: Buffer[],
    counts?: { pages: number; raw: number; data: number },
  ): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.failure !== undefined) throw this.failure;
      try {
        for (const b of bufs) {
          await this.sink(b);
          this.bytesWritten += b.length;
        }
        if (counts) {
          this.pagesWritten += counts.pages;
          this.rawPageBytes += counts.raw;
          this.pageDataBytes += counts.data;
        }
      } catch (e) {
        this.failure = asError(e);
        throw e;
      }
    };
    const p = this.tail.then(run);
    // Keep the chain alive without an unhandled rejection; callers get p itself.
    this.tail = p.catch(() => undefined);
    return p;
  }
}
