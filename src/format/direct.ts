// Large file I/O for disk images: direct I/O (O_DIRECT) where the file system takes
// it, from and into page-aligned memory. Writing 256 MiB through the page cache cost
// 0.2-1.2 s on the development machine (every cache page is faulted in first), and
// 0.11 s direct; reading straight into the program's memory skips every copy.
import fs from 'node:fs';
import { CheckpointError } from './errors.js';

const WASM_PAGE = 65536;

/**
 * A page-aligned buffer: O_DIRECT needs aligned memory, and Node gives no alignment
 * guarantee for a Buffer, while a WebAssembly.Memory is mapped on page boundaries.
 */
export function alignedBuffer(bytes: number): Uint8Array {
  const m = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / WASM_PAGE)) });
  return new Uint8Array(m.buffer, 0, bytes);
}

/** O_DIRECT on this platform, or 0 (then every file is opened buffered). */
const O_DIRECT: number = (fs.constants as { O_DIRECT?: number }).O_DIRECT ?? 0;

/**
 * Opens `path` with O_DIRECT added to `flags` when the platform and the file system
 * take it (tmpfs refuses it), else without; says which.
 */
export function openMaybeDirect(path: string, flags: number): { fd: number; direct: boolean } {
  if (O_DIRECT !== 0 && process.env.ROAM_DIRECT_IO !== 'off') {
    try {
      return { fd: fs.openSync(path, flags | O_DIRECT), direct: true };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }
  return { fd: fs.openSync(path, flags), direct: false };
}

/** Writes all of `buf` at `pos` (positional, synchronous: the bytes are taken now). */
export function writeAllSync(fd: number, buf: Uint8Array, pos: number): void {
  for (let at = 0; at < buf.length;) at += fs.writeSync(fd, buf, at, buf.length - at, pos + at);
}

/** Writes all of `buf` at `pos` in the thread pool. */
export async function writeAll(fd: number, buf: Uint8Array, pos: number): Promise<void> {
  // The length now: a wasm memory's view reads 0 once the memory grows (its bytes stay
  // where they are, and a write under way still takes them; the rest of a short write
  // then fails loudly instead of stopping short).
  const len = buf.length;
  for (let at = 0; at < len;)
    at += await new Promise<number>((resolve, reject) =>
      fs.write(fd, buf, at, len - at, pos + at, (err, n) => (err ? reject(err) : resolve(n))),
    );
}

/** Reads `buf.length` bytes at `pos`; a short read (end of file) is an error. */
function readAll(fd: number, buf: Uint8Array, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let at = 0;
    const next = (): void =>
      fs.read(fd, buf, at, buf.length - at, pos + at, (err, n) => {
        if (err) return reject(err);
        if (n === 0)
          return reject(
            new CheckpointError('truncated', 'checkpoint image is truncated: short read'),
          );
        at += n;
        if (at < buf.length) next();
        else resolve();
      });
    next();
  });
}

/** Reads synchronously; a short read is an error. */
export function readAllSync(fd: number, buf: Uint8Array, pos: number): void {
  for (let at = 0; at < buf.length;) {
    const n = fs.readSync(fd, buf, at, buf.length - at, pos + at);
    if (n === 0)
      throw new CheckpointError('truncated', 'checkpoint image is truncated: short read');
    at += n;
  }
}

/**
 * Reads several (destination, file offset) extents, a few at a time in the thread
 * pool: the kernel faults the destination's fresh pages in as it copies, and on
 * two cores two readers do that about twice as fast as one. `done` (checking what
 * was read) overlaps the reads still under way.
 */
export async function readExtents<E extends { into: Uint8Array; pos: number }>(
  fd: number,
  extents: readonly E[],
  /** Called on the main thread as each extent is in, while the others are read. */
  done: (e: E) => void = () => undefined,
  parallel = 4,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < extents.length && !failed) {
      const e = extents[next++];
      try {
        await readAll(fd, e.into, e.pos);
        done(e);
      } catch (err) {
        failed = true; // the other readers stop at their next extent
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, extents.length) }, worker));
}
