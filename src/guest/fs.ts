// The file-system backend contract the WASI layer uses for every mount (the RAM
// disk and `--dir host::guest` preopens), plus the path walker they share so both
// resolve `.`, `..`, symlinks and errors identically.
import { Errno, WasiError } from './errno.js';

/**
 * An open file or directory as the kernel stores it in its fd table: a RAM disk
 * inode number or a host path relative to the mount root. Plain data, so open
 * files survive a checkpoint.
 */
export type Handle = number | string;

export interface Stat {
  dev: bigint;
  ino: bigint;
  /** A FileType value. */
  filetype: number;
  nlink: bigint;
  size: bigint;
  /** Timestamps in nanoseconds since the epoch. */
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

export interface DirEntry {
  name: string;
  ino: bigint;
  filetype: number;
}

export interface OpenOptions {
  create?: boolean;
  excl?: boolean;
  trunc?: boolean;
  directory?: boolean;
  /** Follow a final symlink (default true). Opening a symlink without it is LOOP. */
  follow?: boolean;
}

/**
 * Every method is synchronous and throws WasiError with the WASI errno on failure.
 * Paths are relative to the directory handle `dir`; absolute paths and `..` above
 * the backend root are NOTCAPABLE.
 */
export interface FsBackend {
  root(): Handle;
  lookup(dir: Handle, path: string, follow: boolean): Handle;
  /**
   * Open (and with `create`, create) a file or directory. Each successful open
   * holds a reference that the caller drops with close(); the RAM disk keeps an
   * unlinked file's data until its last close, like POSIX.
   */
  open(dir: Handle, path: string, o: OpenOptions): Handle;
  close(h: Handle): void;
  stat(h: Handle): Stat;
  statPath(dir: Handle, path: string, follow: boolean): Stat;
  read(h: Handle, pos: number, dst: Uint8Array): number;
  write(h: Handle, pos: number, src: Uint8Array): number;
  truncate(h: Handle, size: number): void;
  /** null leaves that timestamp unchanged. */
  setTimes(h: Handle, atim: bigint | null, mtim: bigint | null): void;
  /** Stable order: `.`, `..`, then the other names sorted. */
  readdir(h: Handle): DirEntry[];
  mkdir(dir: Handle, path: string): void;
  unlink(dir: Handle, path: string): void;
  rmdir(dir: Handle, path: string): void;
  rename(dir: Handle, oldPath: string, newDir: Handle, newPath: string): void;
  symlink(target: string, dir: Handle, path: string): void;
  readlink(dir: Handle, path: string): string;
  link(dir: Handle, oldPath: string, newDir: Handle, newPath: string): void;
  size(h: Handle): number;
}

/** Linux's limit; more hops than this is taken to be a loop. */
export const MAX_SYMLINK_HOPS = 32;
export const NAME_MAX = 255;

export interface SplitPath {
  parts: string[];
  absolute: boolean;
  /** A trailing `/` demands a directory (and follows a final symlink). */
  trailingSlash: boolean;
}

/** Split on `/`, dropping empty components (`a//b` = `a/b`). */
export function splitPath(path: string): SplitPath {
  return {
    parts: path.split('/').filter((p) => p !== ''),
    absolute: path.startsWith('/'),
    trailingSlash: path.length > 1 && path.endsWith('/'),
  };
}

/**
 * Lexical normalisation (no file-system access): collapses `.`, `//` and `x/..`.
 * Leading `..` of a relative path are kept; `..` above `/` stays at `/`. The kernel
 * uses it to map absolute guest paths onto preopens; backends never trust it for
 * confinement, since `..` after a symlink is not lexical.
 */
export function normalisePath(path: string): string {
  const { parts, absolute } = splitPath(path);
  const out: string[] = [];
  for (const p of parts) {
    if (p === '.') continue;
    if (p === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!absolute) out.push('..');
      continue;
    }
    out.push(p);
  }
  const s = out.join('/');
  return absolute ? '/' + s : s === '' ? '.' : s;
}

export function joinPath(a: string, b: string): string {
  if (b.startsWith('/')) return b;
  if (a === '' || a === '.') return b;
  return a.endsWith('/') ? a + b : a + '/' + b;
}

/** Reject names no file system can hold. */
export function checkName(name: string): void {
  if (name.includes('\0')) throw new WasiError(Errno.INVAL, 'NUL in file name');
  if (Buffer.byteLength(name) > NAME_MAX) throw new WasiError(Errno.NAMETOOLONG);
}

/**
 * The few node operations the shared walker needs. `N` is a backend node
 * reference: an inode number or a root-relative host path.
 */
export interface Namespace<N> {
  isDir(n: N): boolean;
  isSymlink(n: N): boolean;
  /** The entry `name` in directory `dir`, or null if there is none. */
  child(dir: N, name: string): N | null;
  readlink(n: N): string;
}

export interface Resolved<N> {
  /** Directories from the backend root down to the parent of `node`. */
  parents: N[];
  /** The final entry's name within its parent, or `.` when the path ended in `.`/`..`. */
  name: string;
  /** The node found, or null when missing and `allowMissing` was set. */
  node: N | null;
  trailingSlash: boolean;
}

export interface ResolveOptions {
  follow: boolean;
  /** Return node null (with its parent) instead of NOENT for a missing final component. */
  allowMissing?: boolean;
}

/**
 * Walk `path` from `start` (the chain of directories from the backend root to the
 * start directory). Keeping the chain makes `..` exact even after symlinks. As in
 * WASI (and wasmtime's cap-std), a walk is confined to the start directory — the
 * directory fd, not the mount — so `..` above it, an absolute path, or a symlink
 * to an absolute path, is refused as NOTCAPABLE.
 */
export function resolvePath<N>(
  ns: Namespace<N>,
  start: N[],
  path: string,
  opts: ResolveOptions,
): Resolved<N> {
  const sp = splitPath(path);
  if (sp.absolute) throw new WasiError(Errno.NOTCAPABLE, 'absolute path');
  if (sp.parts.length === 0) throw new WasiError(Errno.NOENT, 'empty path');
  const stack = start.slice();
  const floor = stack.length;
  const todo = sp.parts;
  const follow = opts.follow || sp.trailingSlash;
  let hops = 0;
  let i = 0;
  for (;;) {
    const comp = todo[i++];
    const last = i === todo.length;
    const cur = stack[stack.length - 1];
    if (!ns.isDir(cur)) throw new WasiError(Errno.NOTDIR);
    if (comp === '.' || comp === '..') {
      if (comp === '..') {
        if (stack.length === floor) throw new WasiError(Errno.NOTCAPABLE, '.. above the directory');
        stack.pop();
      }
      if (last) {
        const node = stack[stack.length - 1];
        return { parents: stack.slice(0, -1), name: '.', node, trailingSlash: sp.trailingSlash };
      }
      continue;
    }
    checkName(comp);
    const child = ns.child(cur, comp);
    if (child === null) {
      if (last && opts.allowMissing)
        return { parents: stack, name: comp, node: null, trailingSlash: sp.trailingSlash };
      throw new WasiError(Errno.NOENT);
    }
    if (ns.isSymlink(child) && (!last || follow)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new WasiError(Errno.LOOP);
      const target = ns.readlink(child);
      const tp = splitPath(target);
      if (tp.parts.length === 0 && !tp.absolute) throw new WasiError(Errno.NOENT, 'empty symlink');
      if (tp.absolute) throw new WasiError(Errno.NOTCAPABLE, 'symlink to an absolute path');
      // A target with a trailing slash must name a directory; `.` enforces that.
      if (tp.trailingSlash) tp.parts.push('.');
      todo.splice(0, i, ...tp.parts);
      i = 0;
      continue;
    }
    if (last) {
      if (sp.trailingSlash && !ns.isDir(child)) throw new WasiError(Errno.NOTDIR);
      return { parents: stack, name: comp, node: child, trailingSlash: sp.trailingSlash };
    }
    stack.push(child);
  }
}
