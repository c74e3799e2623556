// What every WASI interface shares: the calling process and its kernel, its
// memory, its fd table, and the two ways a syscall is wrapped. A syscall that
// must wait unwinds the program (Asyncify) and is re-entered with the same
// arguments when the process is rewound: after a wake-up, or on another host
// after a restore.
import { Errno, FileType, WasiError } from '../errno.js';
import type { Fd, FdTable } from '../fdtable.js';
import type { FsBackend, Handle, Stat } from '../fs.js';
import type { Kernel } from '../kernel.js';
import type { Socket } from '../net.js';
import type { Process } from '../process.js';
import { GuestMemory } from './memory.js';

/** Returned by a blocking syscall's body: unwind now, re-enter later. */
export const BLOCK = Symbol('block');
export type Result = number | typeof BLOCK;

/** One WASM import: i32 arguments arrive as numbers, i64 as bigints. */
type Args = Array<number | bigint>;

export const OFLAGS = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
export const FDFLAGS = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;
export const SYNC_FLAGS = FDFLAGS.DSYNC | FDFLAGS.RSYNC | FDFLAGS.SYNC;
export const LOOKUP_SYMLINK_FOLLOW = 1;

/** The calling process' view of the kernel. */
export class Sys {
  readonly mem: GuestMemory;

  constructor(
    readonly k: Kernel,
    readonly p: Process,
  ) {
    this.mem = new GuestMemory(p);
  }

  table(): FdTable {
    return this.k.fds.get(this.p.pid)!;
  }
  fd(fd: number): Fd {
    const e = this.table().get(fd);
    if (!e) throw new WasiError(Errno.BADF);
    return e;
  }
  mount(e: Fd): FsBackend {
    if (e.t !== 'file' && e.t !== 'dir') throw new WasiError(Errno.BADF);
    return this.k.mounts[e.mount];
  }
  dir(fd: number): { fs: FsBackend; h: Handle; mount: number } {
    const e = this.fd(fd);
    if (e.t !== 'dir') throw new WasiError(e.t === 'file' ? Errno.NOTDIR : Errno.NOTCAPABLE);
    return { fs: this.k.mounts[e.mount], h: e.h, mount: e.mount };
  }
  sock(e: Fd): Socket {
    // A directory descriptor is not a stream at all (as wasmtime): BADF, not NOTSOCK.
    if (e.t === 'dir' || e.t === 'devdir' || e.t === 'netdir') throw new WasiError(Errno.BADF);
    if (e.t !== 'sock') throw new WasiError(Errno.NOTSOCK);
    const s = this.k.sockets.get(e.sock);
    if (!s) throw new WasiError(Errno.BADF);
    return s;
  }

  /** A syscall that never blocks. */
  sys<A extends Args>(fn: (...a: A) => number): (...a: A) => number {
    return (...a: A): number => {
      try {
        return fn(...a);
      } catch (err) {
        if (err instanceof WasiError) return err.errno;
        throw err;
      }
    };
  }

  /** A syscall that may block: it is an Asyncify import, so it may unwind. */
  blocking<A extends Args>(reason: string, fn: (...a: A) => Result): (...a: A) => number {
    const p = this.p;
    return (...a: A): number => {
      p.enterSyscall();
      let r: Result;
      try {
        r = fn(...a);
      } catch (err) {
        p.wait = null;
        if (err instanceof WasiError) return err.errno;
        throw err;
      }
      if (r === BLOCK) {
        p.unwind(reason === 'yield' ? null : (p.wait ?? { reason }));
        return 0;
      }
      p.wait = null;
      return r;
    };
  }

  /** A WASI filestat (64 bytes) at `ptr`. */
  writeFilestat(ptr: number, st: Stat): void {
    const m = this.mem;
    m.setU64(ptr, st.dev);
    m.setU64(ptr + 8, st.ino);
    m.setU8(ptr + 16, st.filetype);
    m.setU64(ptr + 24, st.nlink);
    m.setU64(ptr + 32, st.size);
    m.setU64(ptr + 40, st.atim);
    m.setU64(ptr + 48, st.mtim);
    m.setU64(ptr + 56, st.ctim);
    m.dirty(ptr, 64);
  }
}

/** The filestat of something that is not in a file system (stdio, devices, sockets). */
export const charStat = (filetype: number): Stat => ({
  dev: 0n,
  ino: 0n,
  filetype,
  nlink: 1n,
  size: 0n,
  atim: 0n,
  mtim: 0n,
  ctim: 0n,
});

export const isStdio = (e: Fd): boolean => e.t === 'stdin' || e.t === 'stdout' || e.t === 'stderr';

/** A directory-like fd that is a preopen: its guest path, else undefined. */
export const preopenOf = (e: Fd | undefined): string | undefined =>
  e && (e.t === 'dir' || e.t === 'devdir' || e.t === 'netdir') ? e.preopen : undefined;

export { FileType };
