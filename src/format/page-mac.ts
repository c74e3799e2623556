// The page area of a disk image (version 2) is authenticated in chunks of 256 pages
// (1 MiB): each chunk's tag is a MAC of its bytes, tied to its place (slot, chunk),
// and the list of tags sits in the image's metadata under its HMAC. A tag over a
// large slice costs a fraction of hashing every page (SHA-256 per page was most of
// a 256 MiB checkpoint's and restore's CPU), and a reader can check pages where it
// read them, in the program's memory.
//
// With a key: ChaCha20-Poly1305 with an empty plaintext and the chunk as additional
// data, i.e. a Poly1305 MAC, under a key derived for this image alone
// (HMAC-SHA256(user key, label || 32 random bytes)), the chunk's place as nonce, so
// no key and nonce ever tag two published chunks. Without a key (as the stream's
// SHA-256 END: against accidents only): SHA-256 of the place and the bytes.
import {
  createCipheriv,
  createHash,
  createHmac,
  randomBytes,
  type CipherChaCha20Poly1305,
  type Hash,
} from 'node:crypto';
import { PAGE_SIZE } from '../memory/frames.js';

export const CHUNK_PAGES = 256;
export const CHUNK_BYTES = CHUNK_PAGES * PAGE_SIZE;
export const SALT_BYTES = 32;
const LABEL = Buffer.from('roam image pages v2\0', 'latin1');
const ZEROS = Buffer.alloc(CHUNK_BYTES);

export class ChunkMac {
  private readonly macKey: Buffer | undefined;
  /** Bytes per tag: 16 (Poly1305) with a key, 32 (SHA-256) without. */
  readonly tagBytes: number;

  constructor(
    key: Buffer | undefined,
    readonly salt: Buffer = randomBytes(SALT_BYTES),
  ) {
    if (salt.length !== SALT_BYTES) throw new RangeError(`salt must be ${SALT_BYTES} bytes`);
    this.macKey = key ? createHmac('sha256', key).update(LABEL).update(salt).digest() : undefined;
    this.tagBytes = key ? 16 : 32;
  }

  /** The tag of chunk `chunk` of `slot`; `data` is its first bytes, the rest of the chunk zeros. */
  tag(slot: number, chunk: number, data: Uint8Array): Buffer {
    if (data.length > CHUNK_BYTES) throw new RangeError('a chunk is at most 1 MiB');
    const t = this.begin(slot, chunk);
    t.update(data);
    return t.digest();
  }

  /** A tag computed piece by piece, in order; the chunk's bytes not given are zeros. */
  begin(slot: number, chunk: number): ChunkTagger {
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32LE(slot, 0);
    nonce.writeUInt32LE(chunk, 4);
    nonce.write('pg2\0', 8, 'latin1');
    return new ChunkTagger(this.macKey, nonce);
  }
}

export class ChunkTagger {
  private readonly aead: CipherChaCha20Poly1305 | undefined;
  private readonly hash: Hash | undefined;
  /** Bytes of the chunk given so far. */
  length = 0;

  constructor(macKey: Buffer | undefined, nonce: Buffer) {
    if (macKey)
      this.aead = createCipheriv('chacha20-poly1305', macKey, nonce, { authTagLength: 16 });
    else this.hash = createHash('sha256').update(nonce);
  }

  update(data: Uint8Array): void {
    if (this.length + data.length > CHUNK_BYTES) throw new RangeError('a chunk is at most 1 MiB');
    this.length += data.length;
    if (this.aead) this.aead.setAAD(data, { plaintextLength: 0 });
    else this.hash!.update(data);
  }

  /** Zeros up to byte `at` of the chunk. */
  zerosTo(at: number): void {
    if (at > this.length) this.update(ZEROS.subarray(0, at - this.length));
  }

  digest(): Buffer {
    this.zerosTo(CHUNK_BYTES);
    if (!this.aead) return this.hash!.digest();
    this.aead.final();
    return this.aead.getAuthTag();
  }
}
