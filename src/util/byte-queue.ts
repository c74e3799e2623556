// Received bytes not yet parsed, kept as a list of chunks: a large record or frame
// costs one copy when it spans chunks, none when it does not, and pushing is O(1).
const EMPTY = Buffer.alloc(0);

export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Bytes queued. */
  length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first n queued bytes (n <= length), without removing them. */
  peek(n: number): Buffer {
    if (n === 0) return EMPTY;
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    return Buffer.concat(this.chunks, this.length).subarray(0, n);
  }

  /** Removes and returns the first n queued bytes (n <= length). */
  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.length -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }

  /** Removes the first n queued bytes (n <= length) without copying them. */
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0];
      if (c.length <= n) {
        this.chunks.shift();
        n -= c.length;
      } else {
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }

  /** The queued chunks in order (to read, not to change). */
  *each(): Generator<Buffer> {
    yield* this.chunks;
  }

  clear(): void {
    this.chunks = [];
    this.length = 0;
  }
}
