// Builds the in-memory Checkpoint from typed records, whatever container they came
// in (stream or image metadata), and runs the final VERIFY check.
import { CheckpointError } from './errors.js';
import { RecordType, recordTypeName, type Rec } from './records.js';
import { isZeroPage, parseRecord, type StreamHeader } from './stream.js';
import { computeVerify, PageDigests, pageDigest, PRESENT } from './verify.js';

export interface Checkpoint {
  header: StreamHeader;
  /** Module hash (sha256 hex) -> wasm bytes. */
  modules: Map<string, Buffer>;
  /** Slot -> page -> 4096 bytes; only non-zero pages, last content sent wins (a migration leaves out the pages its prebuilt memories hold). */
  spaces: Map<number, Map<number, Buffer>>;
  /** Slot -> page count, from the SPACES record (empty if the stream had none). */
  spaceSizes: Map<number, number>;
  kernel: Buffer;
  verify: Buffer;
  format: 'stream' | 'image';
  /** Size of the checkpoint (stream bytes, or image file size). */
  bytes: number;
  /** Whether the END record carried a verified HMAC. */
  signed: boolean;
}

const missing = (what: string): CheckpointError =>
  new CheckpointError('missing', `checkpoint is incomplete: no ${what} record`);

export class CheckpointAssembler {
  header: StreamHeader | undefined;
  readonly modules = new Map<string, Buffer>();
  readonly spaces = new Map<number, Map<number, Buffer>>();
  readonly spaceSizes = new Map<number, number>();
  kernel: Buffer | undefined;
  verify: Buffer | undefined;

  /**
   * Sees every page as it is set (a migration writes it into the program's memory);
   * returns true if it keeps the page itself, so that the assembler holds no
   * reference to it (the record it came in can then be freed at once).
   */
  onPage: ((slot: number, page: number, data: Buffer | null) => boolean) | null = null;
  /** Digest of each page as it arrived, when hashing as we go (see constructor). */
  private readonly digests: PageDigests | null;

  /**
   * @param allowPages false for image metadata, where pages live outside the records.
   * @param hashAsWeGo hash each page as it arrives and keep VERIFY's page sum up to
   *   date, so that checking VERIFY at the end hashes only the kernel state (a
   *   migration: the end is downtime).
   * @param presence a transport stream: pages count as PRESENT, not by content (see verify.ts)
   */
  constructor(
    private readonly allowPages = true,
    hashAsWeGo = false,
    private readonly presence = false,
  ) {
    if (presence && !hashAsWeGo)
      throw new Error(
        'CheckpointAssembler: presence-only VERIFY is kept as pages arrive (hashAsWeGo)',
      );
    this.digests = hashAsWeGo ? new PageDigests() : null;
  }

  add(rec: Rec): void {
    const t = parseRecord(rec);
    if (!t) return;
    if (t.type !== RecordType.HEADER && !this.header) {
      throw new CheckpointError(
        'missing',
        `checkpoint does not start with a HEADER record (found ${recordTypeName(rec.type)} first)`,
      );
    }
    const dup = (): CheckpointError =>
      new CheckpointError(
        'corrupted',
        `checkpoint is corrupted: second ${recordTypeName(rec.type)} record at offset ${rec.offset}`,
      );
    switch (t.type) {
      case RecordType.HEADER:
        if (this.header) throw dup();
        this.header = t.header;
        break;
      case RecordType.MODULE:
        this.modules.set(t.hash, t.bytes);
        break;
      case RecordType.PAGES:
        if (!this.allowPages)
          throw new CheckpointError(
            'corrupted',
            'checkpoint is corrupted: PAGES record inside image metadata',
          );
        for (const p of t.pages) this.setPage(p.slot, p.page, p.data);
        break;
      case RecordType.SPACES:
        for (const [slot, n] of t.spaces) this.spaceSizes.set(slot, n);
        break;
      case RecordType.KERNEL:
        if (this.kernel) throw dup();
        this.kernel = t.kernel;
        break;
      case RecordType.VERIFY:
        if (this.verify) throw dup();
        this.verify = t.verify;
        break;
    }
  }

  /** Last content wins; a page whose last content is zero is dropped. */
  setPage(slot: number, page: number, data: Buffer | null): void {
    // A foreign writer may send zeros as RAW; VERIFY only covers non-zero pages.
    const zero = data === null || isZeroPage(data);
    const taken = this.onPage?.(slot, page, zero ? null : data) === true;
    if (taken && !this.digests)
      throw new Error(
        'internal error: pages kept outside the assembler need hashAsWeGo for VERIFY',
      );
    this.digests?.set(slot, page, zero ? null : this.presence ? PRESENT : pageDigest(data));
    let m = this.spaces.get(slot);
    if (zero || taken) {
      m?.delete(page);
      if (m?.size === 0) this.spaces.delete(slot);
      return;
    }
    if (!m) this.spaces.set(slot, (m = new Map<number, Buffer>()));
    m.set(page, data);
  }

  /**
   * Checks completeness and VERIFY; the returned Checkpoint is safe to restore.
   * @param pages VERIFY's page sum kept by the caller (an image reader, which loads pages itself)
   */
  result(
    format: 'stream' | 'image',
    bytes: number,
    signed: boolean,
    pages?: PageDigests,
  ): Checkpoint {
    if (!this.header) throw missing('HEADER');
    if (!this.kernel) throw missing('KERNEL');
    if (!this.verify) throw missing('VERIFY');
    const sum = pages ?? this.digests;
    const actual = sum
      ? computeVerify(this.kernel, sum)
      : recomputeVerify(this.kernel, this.spaces);
    if (!actual.equals(this.verify)) {
      throw new CheckpointError(
        'verify-mismatch',
        'checkpoint VERIFY mismatch: the pages and kernel state do not hash to the recorded VERIFY digest (inconsistent checkpoint)',
      );
    }
    return {
      header: this.header,
      modules: this.modules,
      spaces: this.spaces,
      spaceSizes: this.spaceSizes,
      kernel: this.kernel,
      verify: this.verify,
      format,
      bytes,
      signed,
    };
  }
}

/** VERIFY over a page map (any insertion order). */
export function recomputeVerify(kernel: Buffer, spaces: Map<number, Map<number, Buffer>>): Buffer {
  const set = new PageDigests();
  for (const [slot, m] of spaces)
    for (const [page, data] of m) set.set(slot, page, pageDigest(data));
  return computeVerify(kernel, set);
}
