// The RAM disk: an inode table in JS (small, serialised as JSON) whose file data
// lives in the kernel page pool (large, dirty-tracked, copied by the page cleaner).
// Nothing here keeps a view of pool memory, so the pool may grow at any alloc().
import { PAGE_SIZE } from '../memory/frames.js';
import { Errno, FileType, WasiError } from './errno.js';
import {
  DirEntry,
  FsBackend,
  Handle,
  Namespace,
  OpenOptions,
  Resolved,
  Stat,
  checkName,
  resolvePath,
} from './fs.js';
import { PagePool } from './page-pool.js';

/** Page-number marker for a hole in a sparse file (reads as zeros). */
export const HOLE = -1;
/** Caps the sparse page list (16 GiB = 4 Mi entries) so a far seek cannot exhaust JS memory. */
export const MAX_FILE_SIZE = 2 ** 34;
export const ROOT_INO = 1;

interface InodeBase {
  nlink: number;
  /** Open references (FsBackend.open minus close); keeps unlinked inodes alive. */
  opens: number;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}
interface FileInode extends InodeBase {
  kind: 'file';
  size: number;
  /** Pool page per file page; HOLE for holes; trailing holes are not stored. */
  pages: number[];
}
interface DirInode extends InodeBase {
  kind: 'dir';
  entries: Map<string, number>;
  /** Parent directory inode (the root is its own parent); -1 once removed. */
  parent: number;
}
interface LinkInode extends InodeBase {
  kind: 'link';
  target: string;
}
type Inode = FileInode | DirInode | LinkInode;

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

export interface RamDiskOptions {
  /** Device number reported by stat (distinguishes mounts). */
  dev?: bigint;
}

export class RamDisk implements FsBackend {
  readonly dev: bigint;
  private inodes = new Map<number, Inode>();
  private nextIno = ROOT_INO + 1;
  private readonly ns: Namespace<number>;

  constructor(
    readonly pool: PagePool,
    private readonly now: () => bigint,
    opts: RamDiskOptions = {},
  ) {
    this.dev = opts.dev ?? 0x726d6b6en;
    const t = now();
    this.inodes.set(ROOT_INO, {
      kind: 'dir',
      entries: new Map(),
      parent: ROOT_INO,
      nlink: 2,
      opens: 0,
      atim: t,
      mtim: t,
      ctim: t,
    });
    this.ns = {
      isDir: (n) => this.inodes.get(n)?.kind === 'dir',
      isSymlink: (n) => this.inodes.get(n)?.kind === 'link',
      child: (d, name) => (this.inodes.get(d) as DirInode).entries.get(name) ?? null,
      readlink: (n) => (this.inodes.get(n) as LinkInode).target,
    };
  }

  root(): Handle {
    return ROOT_INO;
  }

  lookup(dir: Handle, path: string, follow: boolean): Handle {
    return this.resolveExisting(dir, path, follow).node;
  }

  open(dir: Handle, path: string, o: OpenOptions): Handle {
    // O_EXCL never follows a final symlink, even a dangling one.
    const follow = o.excl && o.create ? false : (o.follow ?? true);
    const r = this.resolve(dir, path, follow, !!o.create);
    let ino: number;
    if (r.node === null) {
      if (r.trailingSlash)
        throw new WasiError(Errno.ISDIR, 'cannot create a file with a trailing slash');
      if (o.directory) throw new WasiError(Errno.INVAL, 'cannot create a directory with open');
      const parent = this.liveDir(r.parents[r.parents.length - 1]);
      const t = this.now();
      ino = this.newInode({
        kind: 'file',
        size: 0,
        pages: [],
        nlink: 1,
        opens: 0,
        atim: t,
        mtim: t,
        ctim: t,
      });
      this.addEntry(parent, r.name, ino, t);
    } else {
      if (o.create && o.excl) throw new WasiError(Errno.EXIST);
      ino = r.node;
      const node = this.inode(ino);
      if (node.kind === 'link') throw new WasiError(Errno.LOOP, 'open of a symlink without follow');
      if (o.directory && node.kind !== 'dir') throw new WasiError(Errno.NOTDIR);
      if (o.trunc) {
        if (node.kind === 'dir') throw new WasiError(Errno.ISDIR);
        this.truncate(ino, 0);
      }
    }
    this.inode(ino).opens++;
    return ino;
  }

  close(h: Handle): void {
    const node = this.inodes.get(h as number);
    if (!node || node.opens === 0) return;
    node.opens--;
    this.maybeFree(h as number, node);
  }

  stat(h: Handle): Stat {
    const ino = this.ino(h);
    const n = this.inode(ino);
    return {
      dev: this.dev,
      ino: BigInt(ino),
      filetype:
        n.kind === 'file'
          ? FileType.REGULAR_FILE
          : n.kind === 'dir'
            ? FileType.DIRECTORY
            : FileType.SYMBOLIC_LINK,
      nlink: BigInt(n.nlink),
      size: BigInt(this.sizeOf(n)),
      atim: n.atim,
      mtim: n.mtim,
      ctim: n.ctim,
    };
  }

  statPath(dir: Handle, path: string, follow: boolean): Stat {
    return this.stat(this.lookup(dir, path, follow));
  }

  size(h: Handle): number {
    return this.sizeOf(this.inode(this.ino(h)));
  }

  read(h: Handle, pos: number, dst: Uint8Array): number {
    const f = this.file(h);
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
      else this.pool.read(page, inPage, dst, done, len);
      done += len;
    }
    f.atim = this.now();
    return n;
  }

  write(h: Handle, pos: number, src: Uint8Array): number {
    const f = this.file(h);
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
        if (f.pages[idx] === HOLE) f.pages[idx] = this.pool.alloc();
        this.pool.write(f.pages[idx], inPage, src, done, len);
        done += len;
      }
    } catch (e) {
      // A full disk mid-write is a short write, as on POSIX; NOSPC only if nothing fit.
      if (!(e instanceof WasiError) || done === 0) {
        this.trimHoles(f);
        throw e;
      }
    } finally {
      if (done > 0) {
        f.size = Math.max(f.size, pos + done);
        f.mtim = f.ctim = this.now();
      }
    }
    return done;
  }

  truncate(h: Handle, size: number): void {
    const f = this.file(h);
    checkPos(size);
    if (size > MAX_FILE_SIZE) throw new WasiError(Errno.FBIG);
    if (size < f.size) {
      const keep = Math.ceil(size / PAGE_SIZE);
      for (let i = keep; i < f.pages.length; i++)
        if (f.pages[i] !== HOLE) this.pool.free(f.pages[i]);
      if (f.pages.length > keep) f.pages.length = keep;
      // Bytes past EOF must be zero so a later grow reads zeros.
      const tail = size % PAGE_SIZE;
      if (tail !== 0 && keep - 1 < f.pages.length && f.pages[keep - 1] !== HOLE) {
        this.pool.zero(f.pages[keep - 1], tail, PAGE_SIZE - tail);
      }
      this.trimHoles(f);
    }
    // Growing just moves EOF: the new range is a hole.
    f.size = size;
    f.mtim = f.ctim = this.now();
  }

  setTimes(h: Handle, atim: bigint | null, mtim: bigint | null): void {
    const n = this.inode(this.ino(h));
    if (atim !== null) n.atim = atim;
    if (mtim !== null) n.mtim = mtim;
    n.ctim = this.now();
  }

  readdir(h: Handle): DirEntry[] {
    const ino = this.ino(h);
    const d = this.inode(ino);
    if (d.kind !== 'dir') throw new WasiError(Errno.NOTDIR);
    const out: DirEntry[] = [
      { name: '.', ino: BigInt(ino), filetype: FileType.DIRECTORY },
      { name: '..', ino: BigInt(d.parent < 0 ? ino : d.parent), filetype: FileType.DIRECTORY },
    ];
    for (const name of [...d.entries.keys()].sort()) {
      const child = d.entries.get(name)!;
      out.push({ name, ino: BigInt(child), filetype: this.stat(child).filetype });
    }
    d.atim = this.now();
    return out;
  }

  mkdir(dir: Handle, path: string): void {
    const r = this.resolveEntry(dir, path, true);
    if (r.node !== null) throw new WasiError(Errno.EXIST);
    const parentIno = r.parents[r.parents.length - 1];
    const parent = this.liveDir(parentIno);
    const t = this.now();
    const ino = this.newInode({
      kind: 'dir',
      entries: new Map(),
      parent: parentIno,
      nlink: 2,
      opens: 0,
      atim: t,
      mtim: t,
      ctim: t,
    });
    this.addEntry(parent, r.name, ino, t);
    parent.nlink++;
  }

  unlink(dir: Handle, path: string): void {
    const r = this.resolveEntry(dir, path, false);
    const node = this.inode(r.node!);
    if (r.name === '.' || node.kind === 'dir') throw new WasiError(Errno.ISDIR);
    if (r.trailingSlash) throw new WasiError(Errno.NOTDIR);
    this.removeEntry(this.parentOf(r), r.name, r.node!);
  }

  rmdir(dir: Handle, path: string): void {
    const r = this.resolveEntry(dir, path, false);
    if (r.name === '.')
      throw new WasiError(stripSlash(path)[0].endsWith('..') ? Errno.NOTEMPTY : Errno.INVAL);
    const node = this.inode(r.node!);
    if (node.kind !== 'dir') throw new WasiError(Errno.NOTDIR);
    if (node.entries.size > 0) throw new WasiError(Errno.NOTEMPTY);
    this.removeEntry(this.parentOf(r), r.name, r.node!);
  }

  rename(dir: Handle, oldPath: string, newDir: Handle, newPath: string): void {
    const src = this.resolveEntry(dir, oldPath, false) as Resolved<number> & { node: number };
    const dst = this.resolveEntry(newDir, newPath, true);
    if (src.name === '.' || dst.name === '.')
      throw new WasiError(Errno.INVAL, 'cannot rename . or ..');
    const node = this.inode(src.node);
    const srcParent = this.parentOf(src);
    const dstParentIno = dst.parents[dst.parents.length - 1];
    const dstParent = this.liveDir(dstParentIno);
    if (node.kind === 'dir') {
      // Moving a directory below itself would detach a cycle from the tree.
      if (dst.parents.includes(src.node)) throw new WasiError(Errno.INVAL, 'rename into itself');
    } else if (src.trailingSlash || dst.trailingSlash) {
      throw new WasiError(Errno.NOTDIR);
    }
    if (dst.node !== null) {
      if (dst.node === src.node) return; // same file (or hard links to it): POSIX says do nothing
      const victim = this.inode(dst.node);
      if (node.kind === 'dir') {
        if (victim.kind !== 'dir') throw new WasiError(Errno.NOTDIR);
        if (victim.entries.size > 0) throw new WasiError(Errno.NOTEMPTY);
      } else if (victim.kind === 'dir') {
        throw new WasiError(Errno.ISDIR);
      }
      this.removeEntry(dstParent, dst.name, dst.node);
    }
    const t = this.now();
    srcParent.entries.delete(src.name);
    srcParent.mtim = srcParent.ctim = t;
    this.addEntry(dstParent, dst.name, src.node, t);
    node.ctim = t;
    if (node.kind === 'dir') {
      node.parent = dstParentIno;
      srcParent.nlink--;
      dstParent.nlink++;
    }
  }

  symlink(target: string, dir: Handle, path: string): void {
    if (target === '') throw new WasiError(Errno.NOENT, 'empty symlink target');
    if (target.includes('\0')) throw new WasiError(Errno.INVAL);
    const r = this.resolveEntry(dir, path, true);
    if (r.node !== null || r.name === '.') throw new WasiError(Errno.EXIST);
    if (r.trailingSlash) throw new WasiError(Errno.NOENT);
    const parent = this.liveDir(r.parents[r.parents.length - 1]);
    const t = this.now();
    const ino = this.newInode({
      kind: 'link',
      target,
      nlink: 1,
      opens: 0,
      atim: t,
      mtim: t,
      ctim: t,
    });
    this.addEntry(parent, r.name, ino, t);
  }

  readlink(dir: Handle, path: string): string {
    const r = this.resolveExisting(dir, path, false);
    const node = this.inode(r.node);
    if (node.kind !== 'link') throw new WasiError(Errno.INVAL, 'not a symlink');
    return node.target;
  }

  link(dir: Handle, oldPath: string, newDir: Handle, newPath: string): void {
    const src = this.resolveEntry(dir, oldPath, false);
    const node = this.inode(src.node!);
    if (node.kind === 'dir') throw new WasiError(Errno.PERM, 'hard link to a directory');
    if (src.trailingSlash) throw new WasiError(Errno.NOTDIR);
    const dst = this.resolveEntry(newDir, newPath, true);
    if (dst.node !== null || dst.name === '.') throw new WasiError(Errno.EXIST);
    if (dst.trailingSlash) throw new WasiError(Errno.NOENT);
    const parent = this.liveDir(dst.parents[dst.parents.length - 1]);
    const t = this.now();
    this.addEntry(parent, dst.name, src.node!, t);
    node.nlink++;
    node.ctim = t;
  }

  /** Number of inodes (for tests and kernel statistics). */
  inodeCount(): number {
    return this.inodes.size;
  }

  toJSON(): RamDiskJSON {
    const inodes: InodeJSON[] = [];
    for (const [ino, n] of [...this.inodes].sort((a, b) => a[0] - b[0])) {
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
      inodes.push(j);
    }
    return { version: 1, dev: this.dev.toString(), nextIno: this.nextIno, inodes };
  }

  /** Rebuild from toJSON() output; `pool` must already hold the restored pages. */
  static restore(json: RamDiskJSON, pool: PagePool, now: () => bigint): RamDisk {
    if (json.version !== 1) throw new Error(`unknown ramdisk format ${String(json.version)}`);
    const rd = new RamDisk(pool, now, { dev: BigInt(json.dev) });
    rd.inodes.clear();
    rd.nextIno = json.nextIno;
    for (const j of json.inodes) {
      const base = {
        nlink: j.nlink,
        opens: j.opens,
        atim: BigInt(j.atim),
        mtim: BigInt(j.mtim),
        ctim: BigInt(j.ctim),
      };
      let n: Inode;
      if (j.kind === 'file') {
        const pages = (j.pages ?? []).slice();
        for (const p of pages) {
          if (p !== HOLE && (p < 0 || p >= pool.pageCount() || pool.isFree(p)))
            throw new Error(`inode ${j.ino}: page ${p} not allocated in pool`);
        }
        n = { kind: 'file', size: j.size ?? 0, pages, ...base };
      } else if (j.kind === 'dir') {
        n = {
          kind: 'dir',
          entries: new Map(j.entries ?? []),
          parent: j.parent ?? ROOT_INO,
          ...base,
        };
      } else {
        n = { kind: 'link', target: j.target ?? '', ...base };
      }
      rd.inodes.set(j.ino, n);
    }
    if (rd.inodes.get(ROOT_INO)?.kind !== 'dir')
      throw new Error('ramdisk image has no root directory');
    return rd;
  }

  // --- internals ---

  private ino(h: Handle): number {
    if (typeof h !== 'number' || !this.inodes.has(h))
      throw new WasiError(Errno.BADF, `no inode ${String(h)}`);
    return h;
  }

  private inode(ino: number): Inode {
    const n = this.inodes.get(ino);
    if (!n) throw new WasiError(Errno.BADF, `no inode ${ino}`);
    return n;
  }

  private file(h: Handle): FileInode {
    const n = this.inode(this.ino(h));
    if (n.kind === 'dir') throw new WasiError(Errno.ISDIR);
    if (n.kind !== 'file') throw new WasiError(Errno.INVAL, 'not a regular file');
    return n;
  }

  /** A directory that can still gain entries (not removed). */
  private liveDir(ino: number): DirInode {
    const d = this.inode(ino);
    if (d.kind !== 'dir') throw new WasiError(Errno.NOTDIR);
    if (d.parent < 0) throw new WasiError(Errno.NOENT, 'directory was removed');
    return d;
  }

  private parentOf(r: Resolved<number>): DirInode {
    return this.inode(r.parents[r.parents.length - 1]) as DirInode;
  }

  private sizeOf(n: Inode): number {
    return n.kind === 'file'
      ? n.size
      : n.kind === 'dir'
        ? n.entries.size
        : Buffer.byteLength(n.target);
  }

  /** The root-to-`dir` chain the walker needs for `..`. */
  private chain(dir: Handle): number[] {
    const ino = this.ino(dir);
    const d = this.inode(ino);
    if (d.kind !== 'dir') throw new WasiError(Errno.NOTDIR);
    const out = [ino];
    let cur = d;
    while (out[0] !== ROOT_INO) {
      if (cur.parent < 0) throw new WasiError(Errno.NOENT, 'directory was removed');
      out.unshift(cur.parent);
      cur = this.inode(cur.parent) as DirInode;
    }
    return out;
  }

  private resolve(
    dir: Handle,
    path: string,
    follow: boolean,
    allowMissing: boolean,
  ): Resolved<number> {
    return resolvePath(this.ns, this.chain(dir), path, { follow, allowMissing });
  }

  private resolveExisting(
    dir: Handle,
    path: string,
    follow: boolean,
  ): Resolved<number> & { node: number } {
    return this.resolve(dir, path, follow, false) as Resolved<number> & { node: number };
  }

  /**
   * Resolve the entry a namespace operation acts on: never following the final
   * component, even with a trailing slash (rmdir("link/") must not remove the
   * link's target). The slash is reported in `trailingSlash` for the caller.
   */
  private resolveEntry(dir: Handle, path: string, allowMissing: boolean): Resolved<number> {
    const [p, slash] = stripSlash(path);
    const r = this.resolve(dir, p, false, allowMissing);
    return { ...r, trailingSlash: slash };
  }

  private newInode(n: Inode): number {
    const ino = this.nextIno++;
    this.inodes.set(ino, n);
    return ino;
  }

  private addEntry(parent: DirInode, name: string, ino: number, t: bigint): void {
    checkName(name);
    parent.entries.set(name, ino);
    parent.mtim = parent.ctim = t;
  }

  private removeEntry(parent: DirInode, name: string, ino: number): void {
    const t = this.now();
    parent.entries.delete(name);
    parent.mtim = parent.ctim = t;
    const node = this.inode(ino);
    if (node.kind === 'dir') {
      node.nlink = 0;
      node.parent = -1;
      parent.nlink--;
    } else {
      node.nlink--;
    }
    node.ctim = t;
    this.maybeFree(ino, node);
  }

  /** Drop an inode and its pages once no name and no open file refers to it. */
  private maybeFree(ino: number, node: Inode): void {
    if (node.nlink > 0 || node.opens > 0 || ino === ROOT_INO) return;
    if (node.kind === 'file') for (const p of node.pages) if (p !== HOLE) this.pool.free(p);
    this.inodes.delete(ino);
  }

  private trimHoles(f: FileInode): void {
    while (f.pages.length > 0 && f.pages[f.pages.length - 1] === HOLE) f.pages.pop();
  }
}

function stripSlash(path: string): [string, boolean] {
  const p = path.replace(/\/+$/, '');
  return p === '' || p.length === path.length ? [path, false] : [p, true];
}

function checkPos(pos: number): void {
  if (!Number.isSafeInteger(pos) || pos < 0) throw new WasiError(Errno.INVAL, 'bad file position');
}
