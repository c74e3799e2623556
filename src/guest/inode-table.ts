// The RAM disk's inode table: inode numbers to inodes, the root directory, and
// the bookkeeping every namespace operation shares (lookups that fail with the
// right errno, directory entries, freeing an inode and its pages when nothing
// refers to it). ramdisk.ts is the file system on top.
import { Errno, WasiError } from './errno.js';
import { checkName, type Handle } from './fs.js';
import type { PagePool } from './page-pool.js';
import { HOLE, ROOT_INO, type DirInode, type FileInode, type Inode } from './ramdisk-inode.js';

export class InodeTable {
  protected inodes = new Map<number, Inode>();
  protected nextIno = ROOT_INO + 1;

  constructor(
    readonly pool: PagePool,
    protected readonly now: () => bigint,
  ) {
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
  }

  /** Number of inodes (for tests and kernel statistics). */
  inodeCount(): number {
    return this.inodes.size;
  }

  protected ino(h: Handle): number {
    if (typeof h !== 'number' || !this.inodes.has(h))
      throw new WasiError(Errno.BADF, `no inode ${String(h)}`);
    return h;
  }

  protected inode(ino: number): Inode {
    const n = this.inodes.get(ino);
    if (!n) throw new WasiError(Errno.BADF, `no inode ${ino}`);
    return n;
  }

  protected file(h: Handle): FileInode {
    const n = this.inode(this.ino(h));
    if (n.kind === 'dir') throw new WasiError(Errno.ISDIR);
    if (n.kind !== 'file') throw new WasiError(Errno.INVAL, 'not a regular file');
    return n;
  }

  /** A directory that can still gain entries (not removed). */
  protected liveDir(ino: number): DirInode {
    const d = this.inode(ino);
    if (d.kind !== 'dir') throw new WasiError(Errno.NOTDIR);
    if (d.parent < 0) throw new WasiError(Errno.NOENT, 'directory was removed');
    return d;
  }

  protected sizeOf(n: Inode): number {
    return n.kind === 'file'
      ? n.size
      : n.kind === 'dir'
        ? n.entries.size
        : Buffer.byteLength(n.target);
  }

  /** The root-to-`dir` chain the walker needs for `..`. */
  protected chain(dir: Handle): number[] {
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

  protected newInode(n: Inode): number {
    const ino = this.nextIno++;
    this.inodes.set(ino, n);
    return ino;
  }

  protected addEntry(parent: DirInode, name: string, ino: number, t: bigint): void {
    checkName(name);
    parent.entries.set(name, ino);
    parent.mtim = parent.ctim = t;
  }

  protected removeEntry(parent: DirInode, name: string, ino: number): void {
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
  protected maybeFree(ino: number, node: Inode): void {
    if (node.nlink > 0 || node.opens > 0 || ino === ROOT_INO) return;
    if (node.kind === 'file') for (const p of node.pages) if (p !== HOLE) this.pool.free(p);
    this.inodes.delete(ino);
  }
}
