// A host folder mounted into the guest (`--dir host::guest`). Its contents stay on
// the host and are NOT part of a checkpoint; only handles (root-relative paths) are,
// and files are reopened by path after a restore. Paths are walked one component
// at a time with lstat so symlinks and `..` can never leave the root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Errno, FileType, WasiError } from './errno.js';
import {
  DirEntry,
  FsBackend,
  Handle,
  Namespace,
  OpenOptions,
  Resolved,
  Stat,
  resolvePath,
} from './fs.js';
import { fileTypeOf, host, hostErrno } from './host-errno.js';

export { hostErrno };
import { ExactTimes } from './host-times.js';

const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const ROOT = '.';

interface CachedFd {
  fd: number;
  writable: boolean;
  refs: number;
}

/**
 * Handles are canonical root-relative paths (`.` for the root, `a/b` below it):
 * every component but possibly the last is a real directory, and the last is the
 * node itself (a symlink only when looked up without follow).
 */
export class HostFs implements FsBackend {
  /** The root with all symlinks resolved; confinement is checked against it. */
  readonly rootReal: string;
  private readonly rootGiven: string;
  private readonly fds = new Map<string, CachedFd>();
  private readonly ns: Namespace<string>;
  private readonly times = new ExactTimes();

  constructor(hostDir: string) {
    this.rootGiven = path.resolve(hostDir);
    this.rootReal = host(() => fs.realpathSync(this.rootGiven));
    if (!fs.statSync(this.rootReal).isDirectory())
      throw new WasiError(Errno.NOTDIR, `${hostDir} is not a directory`);
    this.ns = {
      isDir: (n) => this.lstat(n)?.isDirectory() ?? false,
      isSymlink: (n) => this.lstat(n)?.isSymbolicLink() ?? false,
      child: (d, name) => {
        const c = d === ROOT ? name : `${d}/${name}`;
        return this.lstat(c) ? c : null;
      },
      readlink: (n) => host(() => fs.readlinkSync(this.abs(n))),
    };
  }

  root(): Handle {
    return ROOT;
  }

  lookup(dir: Handle, p: string, follow: boolean): Handle {
    return this.handleOf(this.resolve(dir, p, follow, false));
  }

  open(dir: Handle, p: string, o: OpenOptions): Handle {
    const follow = o.excl && o.create ? false : (o.follow ?? true);
    const r = this.resolve(dir, p, follow, !!o.create);
    if (r.node === null) {
      if (r.trailingSlash)
        throw new WasiError(Errno.ISDIR, 'cannot create a file with a trailing slash');
      if (o.directory) throw new WasiError(Errno.INVAL, 'cannot create a directory with open');
      const h = this.join(r.parents[r.parents.length - 1], r.name);
      this.forget(h);
      const fd = host(() =>
        fs.openSync(this.safeAbs(h), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666),
      );
      this.fds.set(h, { fd, writable: true, refs: 1 });
      return h;
    }
    if (o.create && o.excl) throw new WasiError(Errno.EXIST);
    const h = this.handleOf(r);
    const st = this.lstat(h);
    if (!st) throw new WasiError(Errno.NOENT);
    if (st.isSymbolicLink()) throw new WasiError(Errno.LOOP, 'open of a symlink without follow');
    if (o.directory && !st.isDirectory()) throw new WasiError(Errno.NOTDIR);
    if (o.trunc) {
      if (st.isDirectory()) throw new WasiError(Errno.ISDIR);
      this.truncate(h, 0);
    }
    const c = this.fds.get(h);
    if (c) c.refs++;
    else this.fds.set(h, { ...this.openFd(h, false), refs: 1 });
    return h;
  }

  close(h: Handle): void {
    const c = this.fds.get(h as string);
    if (!c) return; // never opened here (e.g. restored from a checkpoint): nothing to release
    if (--c.refs <= 0) this.forget(h as string);
  }

  /** Release every cached host fd (VM shutdown, or before handing the folder over). */
  closeAll(): void {
    for (const c of this.fds.values()) fs.closeSync(c.fd);
    this.fds.clear();
  }

  stat(h: Handle): Stat {
    const rel = this.handle(h);
    const c = this.fds.get(rel);
    const s = host(() =>
      c ? fs.fstatSync(c.fd, { bigint: true }) : fs.lstatSync(this.safeAbs(rel), { bigint: true }),
    );
    const key = `${s.dev}:${s.ino}`;
    return {
      dev: s.dev,
      ino: s.ino,
      filetype: fileTypeOf(s),
      nlink: s.nlink,
      size: s.size,
      atim: this.times.report(key, 'atim', s.atimeNs),
      mtim: this.times.report(key, 'mtim', s.mtimeNs),
      ctim: s.ctimeNs,
    };
  }

  statPath(dir: Handle, p: string, follow: boolean): Stat {
    return this.stat(this.lookup(dir, p, follow));
  }

  size(h: Handle): number {
    return Number(this.stat(h).size);
  }

  read(h: Handle, pos: number, dst: Uint8Array): number {
    checkPos(pos);
    const fd = this.fdFor(h, false);
    return host(() => fs.readSync(fd, dst, 0, dst.length, pos));
  }

  write(h: Handle, pos: number, src: Uint8Array): number {
    checkPos(pos);
    const fd = this.fdFor(h, true);
    return host(() => fs.writeSync(fd, src, 0, src.length, pos));
  }

  truncate(h: Handle, size: number): void {
    checkPos(size);
    const fd = this.fdFor(h, true);
    host(() => fs.ftruncateSync(fd, size));
  }

  setTimes(h: Handle, atim: bigint | null, mtim: bigint | null): void {
    const rel = this.handle(h);
    const abs = this.safeAbs(rel);
    const s = host(() => fs.lstatSync(abs, { bigint: true }));
    // Node takes seconds as a double: microsecond precision is the best it offers.
    const secs = (ns: bigint) => Number(ns / 1000n) / 1e6;
    const key = `${s.dev}:${s.ino}`;
    // The time left alone is rewritten too (one call sets both): keep it exact as well.
    const a = atim ?? this.times.report(key, 'atim', s.atimeNs);
    const m = mtim ?? this.times.report(key, 'mtim', s.mtimeNs);
    host(() => fs.lutimesSync(abs, secs(a), secs(m)));
    const after = host(() => fs.lstatSync(abs, { bigint: true }));
    this.times.remember(key, 'atim', a, after.atimeNs);
    this.times.remember(key, 'mtim', m, after.mtimeNs);
  }

  readdir(h: Handle): DirEntry[] {
    const rel = this.handle(h);
    const abs = this.safeAbs(rel);
    const self = host(() => fs.lstatSync(abs, { bigint: true }));
    if (!self.isDirectory()) throw new WasiError(Errno.NOTDIR);
    const parentIno =
      rel === ROOT ? self.ino : host(() => fs.lstatSync(path.dirname(abs), { bigint: true })).ino;
    const out: DirEntry[] = [
      { name: '.', ino: self.ino, filetype: FileType.DIRECTORY },
      { name: '..', ino: parentIno, filetype: FileType.DIRECTORY },
    ];
    const names = host(() => fs.readdirSync(abs)).sort();
    for (const name of names) {
      // An entry may vanish between readdir and lstat; skip it rather than fail.
      const s = fs.lstatSync(path.join(abs, name), { bigint: true, throwIfNoEntry: false });
      if (s) out.push({ name, ino: s.ino, filetype: fileTypeOf(s) });
    }
    return out;
  }

  mkdir(dir: Handle, p: string): void {
    const r = this.resolveEntry(dir, p, true);
    if (r.node !== null || r.name === '.') throw new WasiError(Errno.EXIST);
    host(() =>
      fs.mkdirSync(this.safeAbs(this.join(r.parents[r.parents.length - 1], r.name)), 0o777),
    );
  }

  unlink(dir: Handle, p: string): void {
    const r = this.resolveEntry(dir, p, false);
    const h = this.handleOf(r);
    const st = this.lstat(h);
    if (r.name === '.' || st?.isDirectory()) throw new WasiError(Errno.ISDIR);
    if (r.trailingSlash) throw new WasiError(Errno.NOTDIR);
    host(() => fs.unlinkSync(this.safeAbs(h)));
    this.forget(h);
  }

  rmdir(dir: Handle, p: string): void {
    const r = this.resolveEntry(dir, p, false);
    if (r.name === '.')
      throw new WasiError(stripSlash(p)[0].endsWith('..') ? Errno.NOTEMPTY : Errno.INVAL);
    const h = this.handleOf(r);
    if (!this.lstat(h)?.isDirectory()) throw new WasiError(Errno.NOTDIR);
    host(() => fs.rmdirSync(this.safeAbs(h)));
    this.forget(h, true);
  }

  rename(dir: Handle, oldPath: string, newDir: Handle, newPath: string): void {
    const src = this.resolveEntry(dir, oldPath, false);
    const dst = this.resolveEntry(newDir, newPath, true);
    if (src.name === '.' || dst.name === '.')
      throw new WasiError(Errno.INVAL, 'cannot rename . or ..');
    const from = this.handleOf(src);
    const to = this.join(dst.parents[dst.parents.length - 1], dst.name);
    const isDir = this.lstat(from)?.isDirectory() ?? false;
    if (!isDir && (src.trailingSlash || dst.trailingSlash)) throw new WasiError(Errno.NOTDIR);
    // The host kernel implements the rest of POSIX rename (NOTEMPTY, INVAL into itself, ...).
    host(() => fs.renameSync(this.safeAbs(from), this.safeAbs(to)));
    // Path handles below either name now denote other files; drop their fds.
    this.forget(from, true);
    this.forget(to, true);
  }

  symlink(target: string, dir: Handle, p: string): void {
    if (target === '') throw new WasiError(Errno.NOENT, 'empty symlink target');
    const r = this.resolveEntry(dir, p, true);
    if (r.node !== null || r.name === '.') throw new WasiError(Errno.EXIST);
    if (r.trailingSlash) throw new WasiError(Errno.NOENT);
    // Any target text is allowed: following it is what the walker confines.
    host(() =>
      fs.symlinkSync(target, this.safeAbs(this.join(r.parents[r.parents.length - 1], r.name))),
    );
  }

  readlink(dir: Handle, p: string): string {
    const h = this.handleOf(this.resolve(dir, p, false, false));
    if (!this.lstat(h)?.isSymbolicLink()) throw new WasiError(Errno.INVAL, 'not a symlink');
    return host(() => fs.readlinkSync(this.safeAbs(h)));
  }

  link(dir: Handle, oldPath: string, newDir: Handle, newPath: string): void {
    const src = this.resolveEntry(dir, oldPath, false);
    const from = this.handleOf(src);
    if (this.lstat(from)?.isDirectory())
      throw new WasiError(Errno.PERM, 'hard link to a directory');
    if (src.trailingSlash) throw new WasiError(Errno.NOTDIR);
    const dst = this.resolveEntry(newDir, newPath, true);
    if (dst.node !== null || dst.name === '.') throw new WasiError(Errno.EXIST);
    if (dst.trailingSlash) throw new WasiError(Errno.NOENT);
    const to = this.join(dst.parents[dst.parents.length - 1], dst.name);
    host(() => fs.linkSync(this.safeAbs(from), this.safeAbs(to)));
  }

  // --- internals ---

  /** Validate a handle: a canonical relative path, never `..` or absolute. */
  private handle(h: Handle): string {
    if (typeof h !== 'string') throw new WasiError(Errno.BADF, `not a host handle: ${String(h)}`);
    if (h === ROOT) return h;
    if (
      h === '' ||
      h.startsWith('/') ||
      h.split('/').some((c) => c === '' || c === '.' || c === '..')
    ) {
      throw new WasiError(Errno.NOTCAPABLE, `bad host handle ${h}`);
    }
    return h;
  }

  private abs(rel: string): string {
    return rel === ROOT ? this.rootReal : path.join(this.rootReal, rel);
  }

  /**
   * The host path for a handle, after checking with realpath that its directory is
   * still inside the root: a handle may outlive the directory layout it was
   * resolved in (a parent renamed into a symlink to `/`). The final component is
   * never followed by the callers (lstat, O_NOFOLLOW, unlink, rename, ...).
   */
  private safeAbs(rel: string): string {
    rel = this.handle(rel);
    if (rel === ROOT) return this.rootReal;
    const dir = path.dirname(this.abs(rel));
    const real = host(() => fs.realpathSync(dir));
    if (real !== this.rootReal && !real.startsWith(this.rootReal + path.sep)) {
      throw new WasiError(Errno.NOTCAPABLE, `${rel} escapes the mount`);
    }
    return path.join(real, path.basename(rel));
  }

  private lstat(rel: string): fs.Stats | undefined {
    return host(() => fs.lstatSync(this.abs(rel), { throwIfNoEntry: false }));
  }

  private join(dir: string, name: string): string {
    return dir === ROOT ? name : `${dir}/${name}`;
  }

  private chain(dir: Handle): string[] {
    const rel = this.handle(dir);
    const out = [ROOT];
    if (rel !== ROOT) {
      let acc = '';
      for (const c of rel.split('/')) out.push((acc = acc ? `${acc}/${c}` : c));
    }
    if (!this.lstat(rel)?.isDirectory())
      throw new WasiError(this.lstat(rel) ? Errno.NOTDIR : Errno.NOENT);
    return out;
  }

  private resolve(
    dir: Handle,
    p: string,
    follow: boolean,
    allowMissing: boolean,
  ): Resolved<string> {
    const r = resolvePath(this.ns, this.chain(dir), p, { follow, allowMissing });
    // Belt and braces: the walker confines lexically; realpath confirms on the host.
    this.safeAbs(r.node ?? this.join(r.parents[r.parents.length - 1], r.name));
    return r;
  }

  /** As resolve, but never follows the final component (see RamDisk.resolveEntry). */
  private resolveEntry(dir: Handle, p: string, allowMissing: boolean): Resolved<string> {
    const [q, slash] = stripSlash(p);
    return { ...this.resolve(dir, q, false, allowMissing), trailingSlash: slash };
  }

  private handleOf(r: Resolved<string>): string {
    if (r.node === null) throw new WasiError(Errno.NOENT);
    return r.node;
  }

  private openFd(rel: string, write: boolean): { fd: number; writable: boolean } {
    const abs = this.safeAbs(rel);
    if (write) return { fd: host(() => fs.openSync(abs, O_RDWR | O_NOFOLLOW)), writable: true };
    try {
      return { fd: fs.openSync(abs, O_RDWR | O_NOFOLLOW), writable: true };
    } catch (e) {
      // Directories and read-only files can still be opened for reading.
      const code = (e as NodeJS.ErrnoException).code;
      if (!['EISDIR', 'EACCES', 'EPERM', 'EROFS', 'ETXTBSY'].includes(code ?? ''))
        throw new WasiError(hostErrno(e), (e as Error).message);
      return { fd: host(() => fs.openSync(abs, O_RDONLY | O_NOFOLLOW)), writable: false };
    }
  }

  /** The cached host fd for a handle, opened on demand (e.g. after a restore). */
  private fdFor(h: Handle, write: boolean): number {
    const rel = this.handle(h);
    const c = this.fds.get(rel);
    if (c && (c.writable || !write)) return c.fd;
    const o = this.openFd(rel, write);
    if (c) {
      fs.closeSync(c.fd);
      c.fd = o.fd;
      c.writable = o.writable;
    } else {
      this.fds.set(rel, { ...o, refs: 0 });
    }
    return o.fd;
  }

  /**
   * Close cached fds for a path (and, for directories, everything below it) once
   * the path names a different file: handles are paths, so a stale fd must not be
   * served for whatever takes the name next.
   */
  private forget(rel: string, subtree = false): void {
    for (const [k, c] of this.fds) {
      if (k === rel || (subtree && k.startsWith(rel + '/'))) {
        fs.closeSync(c.fd);
        this.fds.delete(k);
      }
    }
  }
}

function stripSlash(p: string): [string, boolean] {
  const q = p.replace(/\/+$/, '');
  return q === '' || q.length === p.length ? [p, false] : [q, true];
}

function checkPos(pos: number): void {
  if (!Number.isSafeInteger(pos) || pos < 0) throw new WasiError(Errno.INVAL, 'bad file position');
}
