// The RAM disk: an inode table in JS (small, serialised as JSON) whose file data
// lives in the kernel page pool (large, dirty-tracked, copied by the page cleaner).
// Nothing here keeps a view of pool memory, so the pool may grow at any alloc().
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
import { PagePool } from './page-pool.js';
import { InodeTable } from './inode-table.js';
import {
  ROOT_INO,
  inodeFromJSON,
  inodeToJSON,
  readFile,
  truncateFile,
  writeFile,
  type DirInode,
  type LinkInode,
  type RamDiskJSON,
} from './ramdisk-inode.js';

export {
  HOLE,
  MAX_FILE_SIZE,
  ROOT_INO,
  type InodeJSON,
  type RamDiskJSON,
} from './ramdisk-inode.js';

export interface RamDiskOptions {
  /** Device number reported by stat (distinguishes mounts). */
  dev?: bigint;
}

export class RamDisk extends InodeTable implements FsBackend {
  readonly dev: bigint;
  private readonly ns: Namespace<number>;

  constructor(pool: PagePool, now: () => bigint, opts: RamDiskOptions = {}) {
    super(pool, now);
    this.dev = opts.dev ?? 0x726d6b6en;
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
    const n = readFile(this.pool, f, pos, dst);
    f.atim = this.now();
    return n;
  }

  write(h: Handle, pos: number, src: Uint8Array): number {
    return writeFile(this.pool, this.file(h), pos, src, this.now);
  }

  truncate(h: Handle, size: number): void {
    const f = this.file(h);
    truncateFile(this.pool, f, size);
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

  toJSON(): RamDiskJSON {
    const inodes = [...this.inodes]
      .sort((a, b) => a[0] - b[0])
      .map(([ino, n]) => inodeToJSON(ino, n));
    return { version: 1, dev: this.dev.toString(), nextIno: this.nextIno, inodes };
  }

  /** Rebuild from toJSON() output; `pool` must already hold the restored pages. */
  static restore(json: RamDiskJSON, pool: PagePool, now: () => bigint): RamDisk {
    if (json.version !== 1) throw new Error(`unknown ramdisk format ${String(json.version)}`);
    const rd = new RamDisk(pool, now, { dev: BigInt(json.dev) });
    rd.inodes.clear();
    rd.nextIno = json.nextIno;
    for (const j of json.inodes) rd.inodes.set(j.ino, inodeFromJSON(j, pool));
    if (rd.inodes.get(ROOT_INO)?.kind !== 'dir')
      throw new Error('ramdisk image has no root directory');
    return rd;
  }

  // --- internals ---

  private parentOf(r: Resolved<number>): DirInode {
    return this.inode(r.parents[r.parents.length - 1]) as DirInode;
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
}

function stripSlash(path: string): [string, boolean] {
  const p = path.replace(/\/+$/, '');
  return p === '' || p.length === path.length ? [path, false] : [p, true];
}
