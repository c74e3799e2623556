// VERIFY, the checkpoint-integrity check of thesis 6.6.4 (DESIGN.md section 4):
// the kernel state at the freeze point and the digest of every non-zero page the
// checkpoint holds, as the page cleaner saw them and as the reader assembled them.
//
// Format 2 makes it incremental: the pages enter as an order-independent sum, kept
// up to date as each page is sent (source) or arrives (destination), so that
// nothing proportional to the VM's size is hashed between the freeze and the first
// instruction — only the kernel state and 40 bytes. Each page contributes its
// SHA-256 XOR a mask derived from its frame number, added lane-wise (8 x u32); a
// page sent again is subtracted before its new content is added. Moving, changing,
// adding or dropping a page changes the sum (with probability 1 - 2^-256 for
// accidental errors). VERIFY is a consistency check, not an authenticator: the
// migration channel (AES-GCM) and signed files (HMAC) are what refuse tampering.
import { createHash, hash } from 'node:crypto';

export const DIGEST_BYTES = 32;
const LANES = DIGEST_BYTES / 4;
const VERIFY_TAG = Buffer.from('roam VERIFY v2\0', 'latin1');

/**
 * The digest a transport stream's VERIFY counts for every non-zero page (format
 * 3). The migration channel authenticates every byte (AES-GCM, in order), so
 * hashing each page again on both sides only re-checked the transport, at about
 * 6 µs a page: a second of CPU for a 256 MiB VM. In a transport stream VERIFY
 * covers which frames hold non-zero pages and the kernel state; files, which
 * have no such channel, keep content digests.
 */
export const PRESENT: Uint8Array = new Uint8Array(DIGEST_BYTES);

/** SHA-256 of one 4096-byte page. */
// One-shot hashing: per-page calls dominate checkpoint time, and this avoids a Hash object each.
export const pageDigest = (data: Uint8Array): Buffer => hash('sha256', data, 'buffer');

/** murmur3's finaliser: a cheap bijective mix of 32 bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Digests of a frame space, indexed by page, in one flat array (no object per page). */
interface SlotDigests {
  digests: Uint8Array;
  has: Uint8Array;
}

/**
 * The non-zero pages of a checkpoint by frame number, with their digests and the
 * running sum VERIFY is computed from.
 */
export class PageDigests {
  private readonly slots = new Map<number, SlotDigests>();
  private readonly acc = new Uint32Array(LANES);
  /** Non-zero pages held. */
  count = 0;

  /** Record a page's digest (its current content), or null: the page is zero now. */
  set(slot: number, page: number, digest: Uint8Array | null): void {
    let s = this.slots.get(slot);
    if (!s) {
      if (digest === null) return;
      this.slots.set(
        slot,
        (s = { digests: new Uint8Array(DIGEST_BYTES * 256), has: new Uint8Array(256) }),
      );
    }
    if (page < s.has.length && s.has[page]) {
      this.add(slot, page, s.digests, page * DIGEST_BYTES, -1);
      s.has[page] = 0;
      this.count--;
    }
    if (digest === null) return;
    if (digest.length !== DIGEST_BYTES)
      throw new RangeError(`page digest must be ${DIGEST_BYTES} bytes, got ${digest.length}`);
    if (page >= s.has.length) s = this.grow(slot, s, page);
    s.digests.set(digest, page * DIGEST_BYTES);
    s.has[page] = 1;
    this.count++;
    this.add(slot, page, s.digests, page * DIGEST_BYTES, 1);
  }

  has(slot: number, page: number): boolean {
    const s = this.slots.get(slot);
    return s !== undefined && page < s.has.length && s.has[page] === 1;
  }

  get(slot: number, page: number): Uint8Array | undefined {
    const s = this.slots.get(slot);
    if (!s || page >= s.has.length || !s.has[page]) return undefined;
    return s.digests.subarray(page * DIGEST_BYTES, (page + 1) * DIGEST_BYTES);
  }

  /** Frame spaces that ever held a page. */
  slotIds(): number[] {
    return [...this.slots.keys()];
  }

  /** The pages held of one frame space, ascending. */
  pagesOf(slot: number): number[] {
    const s = this.slots.get(slot),
      out: number[] = [];
    if (s) for (let page = 0; page < s.has.length; page++) if (s.has[page]) out.push(page);
    return out;
  }

  /** Every page held, in ascending (slot, page) order. */
  *entries(): Generator<[number, number, Uint8Array]> {
    for (const slot of this.slotIds().sort((a, b) => a - b)) {
      const s = this.slots.get(slot)!;
      for (let page = 0; page < s.has.length; page++) {
        if (s.has[page])
          yield [slot, page, s.digests.subarray(page * DIGEST_BYTES, (page + 1) * DIGEST_BYTES)];
      }
    }
  }

  /** The running sum: 8 u32 LE lanes. */
  sum(): Buffer {
    const out = Buffer.alloc(DIGEST_BYTES);
    for (let j = 0; j < LANES; j++) out.writeUInt32LE(this.acc[j], 4 * j);
    return out;
  }

  private grow(slot: number, s: SlotDigests, page: number): SlotDigests {
    let n = s.has.length;
    while (n <= page) n *= 2;
    const g = { digests: new Uint8Array(n * DIGEST_BYTES), has: new Uint8Array(n) };
    g.digests.set(s.digests);
    g.has.set(s.has);
    this.slots.set(slot, g);
    return g;
  }

  /** acc += sign * (digest XOR mask(slot, page)), lane by lane. */
  private add(slot: number, page: number, d: Uint8Array, at: number, sign: 1 | -1): void {
    const frame = fmix32((page ^ fmix32(slot + 0x9e3779b9)) >>> 0);
    for (let j = 0; j < LANES; j++) {
      const o = at + 4 * j;
      const lane = (d[o] | (d[o + 1] << 8) | (d[o + 2] << 16) | (d[o + 3] << 24)) >>> 0;
      const term = (lane ^ fmix32((frame + Math.imul(j + 1, 0x9e3779b9)) >>> 0)) >>> 0;
      this.acc[j] = sign === 1 ? this.acc[j] + term : this.acc[j] - term;
    }
  }
}

/**
 * VERIFY = SHA-256("roam VERIFY v2\0" || u32 LE page count || 32-byte page sum ||
 * kernel bytes), the page sum being PageDigests.sum() over the non-zero pages.
 * `pages` is a PageDigests kept as the pages went by, or (slot, page, digest)
 * triples in any order (each frame at most once).
 */
export function computeVerify(
  kernel: Uint8Array,
  pages: PageDigests | Iterable<readonly [number, number, Uint8Array]>,
): Buffer {
  let set: PageDigests;
  if (pages instanceof PageDigests) set = pages;
  else {
    set = new PageDigests();
    for (const [slot, page, d] of pages) {
      if (set.has(slot, page)) throw new Error(`computeVerify: page ${slot}:${page} given twice`);
      set.set(slot, page, d);
    }
  }
  const count = Buffer.alloc(4);
  count.writeUInt32LE(set.count, 0);
  return createHash('sha256')
    .update(VERIFY_TAG)
    .update(count)
    .update(set.sum())
    .update(kernel)
    .digest();
}
