// The RAM disk's inodes: their shapes, their file data in the page pool, and their
// JSON form in a checkpoint (ramdisk.ts is the file system over them).
import { PAGE_SIZE } from '../memory/frames.js';
import { Errno, WasiError } from './errno.js';
import type { PagePool } from './page-pool.js';

/** Page-number marker for a hole in a sparse file (reads as zeros). */
export const HOLE = -1;
/** Caps the sparse page list (16 GiB = 4 Mi entries) so a far seek cannot exhaust JS memory. */
export const MAX_FILE_SIZE = 2 ** 34;
export const ROOT_INO = 1;

export interface InodeBase {
  nlink: number;
  /** Open references (FsBackend.open minus close); keeps unlinked inodes alive. */
  opens: number;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}
export interface FileInode extends InodeBase {
  kind: 'file';
  size: number;
  /** Pool page per file page; HOLE for holes; trailing holes are not stored. */
  pages: number[];
}
export interface DirInode extends InodeBase {
  kind: 'dir';
  entries: Map<string, number>;
  /** Parent directory inode (the root is its own parent); -1 once removed. */
  parent: number;
}
export interface LinkInode extends InodeBase {
  kind: 'link';
  target: string;
}
export type Inode = FileInode | DirInode | LinkInode;

/** JSON form of one inode: bigints as decimal strings, maps as pair lists. */
export interface InodeJSON {
  ino: number;
  kind: 'file' | 'dir' | 'link';
  nlink: number;
  opens: number;
  atim: string;
  mtim: string;
  ctim: string;
  size?: number;
  pages?: number[];
  entries?: Array<[string, number]>;
  parent?: number;
  target?: string;
}
export interface RamDiskJSON {
  version: 1;
  dev: string;
  nextIno: number;
  inodes: InodeJSON[];
}

/** Reads file bytes at `pos` into `dst` (holes read as zeros); returns the count. */
export function readFile(pool: PagePool, f: FileInode, pos: number, dst: Uint8Array): number {
  checkPos(pos);
  const n = Math.max(0, Math.min(dst.length, f.size - pos));
  let done = 0;
  while (done < n) {
    const off = pos + done;
    const idx = Math.floor(off / PAGE_SIZE);
    const inPage = off % PAGE_SIZE;
    const len = Math.min(PAGE_SIZE - inPage, n - done);
    const page = idx < f.pages.length ? f.pages[idx] : HOLE;
    if (page === HOLE) dst.fill(0, done, done + len);
    else pool.read(page, inPage, dst, done, len);
    done += len;
  }
  return n;
}

/** Writes `src` at `pos`, allocating pool pages; a full pool mid-write is a short write. */
export function writeFile(
  pool: PagePool,
  f: FileInode,
  pos: number,
  src: Uint8Array,
  now: () => bigint,
): number {
  checkPos(pos);
  if (src.length === 0) return 0;
  if (pos + src.length > MAX_FILE_SIZE) throw new WasiError(Errno.FBIG);
  let done = 0;
  try {
    while (done < src.length) {
      const off = pos + done;
      const idx = Math.floor(off / PAGE_SIZE);
      const inPage = off % PAGE_SIZE;
      const len = Math.min(PAGE_SIZE - inPage, src.length - done);
      while (f.pages.length <= idx) f.pages.push(HOLE);
      if (f.pages[idx] === HOLE) f.pages[idx] = pool.alloc();
      pool.write(f.pages[idx], inPage, src, done, len);
      done += len;
    }
  } catch (e) {
    // A full disk mid-write is a short write, as on POSIX; NOSPC only if nothing fit.
    if (!(e instanceof WasiError) || done === 0) {
      trimHoles(f);
      throw e;
    }
  } finally {
    if (done > 0) {
      f.size = Math.max(f.size, pos + done);
      f.mtim = f.ctim = now();
    }
  }
  return done;
}

/** Sets the size: shrinking frees whole pages and zeroes the tail; growing adds a hole. */
export function truncateFile(pool: PagePool, f: FileInode, size: number): void {
  checkPos(size);
  if (size > MAX_FILE_SIZE) throw new WasiError(Errno.FBIG);
  if (size < f.size) {
    const keep = Math.ceil(size / PAGE_SIZE);
    for (let i = keep; i < f.pages.length; i++) if (f.pages[i] !== HOLE) pool.free(f.pages[i]);
    if (f.pages.length > keep) f.pages.length = keep;
    // Bytes past EOF must be zero so a later grow reads zeros.
    const tail = size % PAGE_SIZE;
    if (tail !== 0 && keep - 1 < f.pages.length && f.pages[keep - 1] !== HOLE) {
      pool.zero(f.pages[keep - 1], tail, PAGE_SIZE - tail);
    }
    trimHoles(f);
  }
  f.size = size;
}

export function trimHoles(f: FileInode): void {
  while (f.pages.length > 0 && f.pages[f.pages.length - 1] === HOLE) f.pages.pop();
}

/** JSON form of one inode (bigints as decimal strings, maps as pair lists). */
export function inodeToJSON(ino: number, n: Inode): InodeJSON {
  const j: InodeJSON = {
    ino,
    kind: n.kind,
    nlink: n.nlink,
    opens: n.opens,
    atim: n.atim.toString(),
    mtim: n.mtim.toString(),
    ctim: n.ctim.toString(),
  };
  if (n.kind === 'file') {
    j.size = n.size;
    j.pages = n.pages.slice();
  } else if (n.kind === 'dir') {
    j.entries = [...n.entries];
    j.parent = n.parent;
  } else j.target = n.target;
  return j;
}

/** One inode back from JSON; its file pages must be allocated in `pool` (the restored one). */
export function inodeFromJSON(j: InodeJSON, pool: PagePool): Inode {
  const base = {
    nlink: j.nlink,
    opens: j.opens,
    atim: BigInt(j.atim),
    mtim: BigInt(j.mtim),
    ctim: BigInt(j.ctim),
  };
  if (j.kind === 'file') {
    const pages = (j.pages ?? []).slice();
    for (const p of pages) {
      if (p !== HOLE && (p < 0 || p >= pool.pageCount() || pool.isFree(p)))
        throw new Error(`inode ${j.ino}: page ${p} not allocated in pool`);
    }
    return { kind: 'file', size: j.size ?? 0, pages, ...base };
  }
  if (j.kind === 'dir')
    return {
      kind: 'dir',
      entries: new Map(j.entries ?? []),
      parent: j.parent ?? ROOT_INO,
      ...base,
    };
  return { kind: 'link', target: j.target ?? '', ...base };
}

export function checkPos(pos: number): void {
  if (!Number.isSafeInteger(pos) || pos < 0) throw new WasiError(Errno.INVAL, 'bad file position');
}
