// WASI preview1, implemented by the guest kernel itself (node:wasi keeps its state
// where a checkpoint cannot reach it). Each syscall reads its arguments from the
// calling process' memory and returns an errno. A syscall that must wait unwinds
// the program (Asyncify) and is re-entered with the same arguments when the
// process is rewound: after a wake-up, or on another host after a restore.
import { randomFillSync } from 'node:crypto';
import { Errno, FileType, WasiError } from './errno.js';
import type { Fd } from './fdtable.js';
import type { Kernel } from './kernel.js';
import { Connection, Listener } from './net.js';
import { ProcExit, type Process } from './process.js';

const BLOCK = Symbol('block');
type Result = number | typeof BLOCK;
const te = new TextEncoder();
const td = new TextDecoder();

const OFLAGS = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 };
const FDFLAGS = { APPEND: 1, NONBLOCK: 4 };
const ALL_RIGHTS = 0x1fffffffn;
/** errno a pending read of /dev/checkpoint returns in the resumed copy: "we have arrived". */
export const ARRIVED_ERRNO = Errno.CANCELED;

export function wasiImports(k: Kernel, p: Process): WebAssembly.Imports {
  const dv = () => p.view();
  const u8 = () => p.bytes();
  const str = (ptr: number, len: number) => td.decode(u8().subarray(ptr, ptr + len));
  const table = () => k.fds.get(p.pid)!;
  const fdOf = (fd: number): Fd => {
    const e = table().get(fd);
    if (!e) throw new WasiError(Errno.BADF);
    return e;
  };
  const iovecs = (ptr: number, n: number): Uint8Array[] => {
    const v = dv();
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const base = v.getUint32(ptr + i * 8, true);
      const len = v.getUint32(ptr + i * 8 + 4, true);
      out.push(u8().subarray(base, base + len));
    }
    return out;
  };
  /** Scatter `src` into the iovecs, marking the pages written (the kernel's write barrier). */
  const scatter = (
    ptr: number,
    n: number,
    fill: (dst: Uint8Array) => number | null,
  ): number | null => {
    let total = 0;
    for (const iov of iovecs(ptr, n)) {
      if (iov.length === 0) continue;
      const got = fill(iov);
      if (got === null) return total > 0 ? total : null;
      p.markDirty(iov.byteOffset, got);
      total += got;
      if (got < iov.length) break;
    }
    return total;
  };
  const gather = (ptr: number, n: number): Uint8Array => {
    const parts = iovecs(ptr, n);
    if (parts.length === 1) return parts[0];
    const size = parts.reduce((a, b) => a + b.length, 0);
    const out = new Uint8Array(size);
    let o = 0;
    for (const part of parts) {
      out.set(part, o);
      o += part.length;
    }
    return out;
  };
  const setU32 = (ptr: number, v: number) => {
    dv().setUint32(ptr, v, true);
    p.markDirty(ptr, 4);
  };
  const setU64 = (ptr: number, v: bigint) => {
    dv().setBigUint64(ptr, v, true);
    p.markDirty(ptr, 8);
  };
  const write = (ptr: number, data: Uint8Array) => {
    u8().set(data, ptr);
    p.markDirty(ptr, data.length);
  };

  /** A syscall that never blocks. */
  const sys =
    (fn: (...a: any[]) => number) =>
    (...a: any[]): number => {
      try {
        return fn(...a);
      } catch (err) {
        if (err instanceof WasiError) return err.errno;
        throw err;
      }
    };
  /** A syscall that may block: it is an Asyncify import, so it may unwind. */
  const blocking =
    (reason: string, fn: (...a: any[]) => Result) =>
    (...a: any[]): number => {
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

  const mount = (e: Fd) => {
    if (e.t !== 'file' && e.t !== 'dir') throw new WasiError(Errno.BADF);
    return k.mounts[e.mount];
  };
  const dirOf = (fd: number) => {
    const e = fdOf(fd);
    if (e.t !== 'dir') throw new WasiError(e.t === 'file' ? Errno.NOTDIR : Errno.NOTCAPABLE);
    return { fs: k.mounts[e.mount], h: e.h, mount: e.mount };
  };
  const sock = (e: Fd) => {
    if (e.t !== 'sock') throw new WasiError(Errno.NOTSOCK);
    const s = k.sockets.get(e.sock);
    if (!s) throw new WasiError(Errno.BADF);
    return s;
  };
  const filetypeOf = (e: Fd): number => {
    switch (e.t) {
      case 'stdin':
      case 'stdout':
      case 'stderr':
        return FileType.CHARACTER_DEVICE;
      case 'file':
        return mount(e).stat(e.h).filetype;
      case 'dir':
      case 'devdir':
      case 'netdir':
        return FileType.DIRECTORY;
      case 'dev':
        return FileType.CHARACTER_DEVICE;
      case 'sock':
        return FileType.SOCKET_STREAM;
    }
  };
  const writeFilestat = (
    ptr: number,
    st: {
      dev: bigint;
      ino: bigint;
      filetype: number;
      nlink: bigint;
      size: bigint;
      atim: bigint;
      mtim: bigint;
      ctim: bigint;
    },
  ) => {
    const v = dv();
    v.setBigUint64(ptr, st.dev, true);
    v.setBigUint64(ptr + 8, st.ino, true);
    v.setUint8(ptr + 16, st.filetype);
    v.setBigUint64(ptr + 24, st.nlink, true);
    v.setBigUint64(ptr + 32, st.size, true);
    v.setBigUint64(ptr + 40, st.atim, true);
    v.setBigUint64(ptr + 48, st.mtim, true);
    v.setBigUint64(ptr + 56, st.ctim, true);
    p.markDirty(ptr, 64);
  };
  const charStat = (filetype: number) => ({
    dev: 0n,
    ino: 0n,
    filetype,
    nlink: 1n,
    size: 0n,
    atim: 0n,
    mtim: 0n,
    ctim: 0n,
  });

  /** Read from any readable fd; null = would block. */
  const readInto = (e: Fd, dst: Uint8Array): number | null => {
    switch (e.t) {
      case 'stdin':
        return k.readStdin(dst);
      case 'file': {
        const n = mount(e).read(e.h, e.pos, dst);
        e.pos += n;
        return n;
      }
      case 'dev':
        if (e.name === 'null') return 0;
        if (e.name === 'zero') {
          dst.fill(0);
          return dst.length;
        }
        if (e.name === 'urandom') {
          randomFillSync(dst);
          return dst.length;
        }
        if (e.arrived) throw new WasiError(ARRIVED_ERRNO);
        if (!k.device) throw new WasiError(Errno.NODEV, 'this VM has no checkpoint machinery');
        if (e.session === undefined) {
          e.session = k.nextSession++;
          k.device.startCheckpoint(e.session);
        }
        {
          const chunk = k.device.take(e.session, dst.length);
          if (chunk === null) return null;
          dst.set(chunk);
          return chunk.length;
        }
      case 'sock': {
        const s = sock(e);
        if (!(s instanceof Connection)) throw new WasiError(Errno.NOTCONN);
        const n = s.read(dst);
        if (n === null && e.nonblock) throw new WasiError(Errno.AGAIN);
        return n;
      }
      case 'dir':
      case 'devdir':
      case 'netdir':
        throw new WasiError(Errno.ISDIR);
      default:
        throw new WasiError(Errno.BADF);
    }
  };
  const writeFrom = (e: Fd, src: Uint8Array): number => {
    switch (e.t) {
      case 'stdout':
        k.writeStdout(src);
        return src.length;
      case 'stderr':
        k.writeStderr(src);
        return src.length;
      case 'file': {
        const fs = mount(e);
        if (e.append) e.pos = fs.size(e.h);
        const n = fs.write(e.h, e.pos, src);
        e.pos += n;
        return n;
      }
      case 'dev':
        if (e.name === 'checkpoint') {
          // "migrate HOST:PORT" / "fork HOST:PORT", then read() for the outcome.
          if (!k.device || e.session !== undefined) throw new WasiError(Errno.BADF);
          const session = k.nextSession++;
          if (!k.device.command(session, td.decode(src))) throw new WasiError(Errno.INVAL);
          e.session = session;
          return src.length;
        }
        return src.length;
      case 'sock': {
        const s = sock(e);
        if (!(s instanceof Connection)) throw new WasiError(Errno.NOTCONN);
        return s.write(src);
      }
      case 'dir':
      case 'devdir':
      case 'netdir':
        throw new WasiError(Errno.ISDIR);
      default:
        throw new WasiError(Errno.BADF);
    }
  };

  const readable = (e: Fd): boolean => {
    if (e.t === 'sock') {
      const s = k.sockets.get(e.sock);
      return s instanceof Listener
        ? !k.fenced && s.pending > 0
        : s instanceof Connection
          ? s.readable()
          : true;
    }
    if (e.t === 'stdin') {
      const probe = new Uint8Array(0);
      return k.readStdin(probe) !== null;
    }
    return true;
  };

  const openPath = (
    dirfd: number,
    dirflags: number,
    pathStr: string,
    oflags: number,
    fdflags: number,
  ): Result => {
    const d = fdOf(dirfd);
    if (d.t === 'devdir') {
      const name = pathStr.replace(/^\.\//, '');
      if (name === '' || name === '.') return table().add({ t: 'devdir', preopen: d.preopen });
      if (!['null', 'zero', 'urandom', 'checkpoint'].includes(name))
        throw new WasiError(Errno.NOENT);
      return table().add({ t: 'dev', name: name as 'null' });
    }
    if (d.t === 'netdir') {
      const full = (d.sub ? `${d.sub}/` : '') + pathStr.replace(/^\.\//, '');
      if (full === '' || full === '.' || full === 'tcp')
        return table().add({ t: 'netdir', preopen: d.preopen, sub: full === '.' ? '' : full });
      const m = /^tcp\/(.+)$/.exec(full);
      if (!m) throw new WasiError(Errno.NOENT);
      // Connecting takes a round trip: block until the host socket settles.
      const pending = p.pending as { addr: string; result?: Connection; error?: number } | null;
      if (!pending || pending.addr !== m[1]) {
        // A fenced VM (a migration's final phase) opens no new connection: it waits.
        if (k.fenced) return BLOCK;
        const job: { addr: string; result?: Connection; error?: number } = { addr: m[1] };
        p.pending = job;
        try {
          Connection.connect(m[1], () => k.wakeAll()).then(
            (c) => {
              job.result = c;
              k.wake(p);
            },
            (err) => {
              job.error = err instanceof WasiError ? err.errno : Errno.CONNREFUSED;
              k.wake(p);
            },
          );
        } catch {
          p.pending = null;
          throw new WasiError(Errno.INVAL);
        }
        return BLOCK;
      }
      if (pending.error !== undefined) {
        p.pending = null;
        throw new WasiError(pending.error);
      }
      if (!pending.result) return BLOCK;
      p.pending = null;
      const id = k.nextSock++;
      k.sockets.set(id, pending.result);
      return table().add({ t: 'sock', sock: id, nonblock: (fdflags & FDFLAGS.NONBLOCK) !== 0 });
    }
    const { fs, h, mount: m } = dirOf(dirfd);
    const opened = fs.open(h, pathStr, {
      create: (oflags & OFLAGS.CREAT) !== 0,
      excl: (oflags & OFLAGS.EXCL) !== 0,
      trunc: (oflags & OFLAGS.TRUNC) !== 0,
      directory: (oflags & OFLAGS.DIRECTORY) !== 0,
      follow: (dirflags & 1) !== 0,
    });
    const isDir = fs.stat(opened).filetype === FileType.DIRECTORY;
    return table().add(
      isDir
        ? { t: 'dir', mount: m, h: opened }
        : {
            t: 'file',
            mount: m,
            h: opened,
            pos: 0,
            append: (fdflags & FDFLAGS.APPEND) !== 0,
            nonblock: (fdflags & FDFLAGS.NONBLOCK) !== 0,
          },
    );
  };

  const closeFd = (fd: number) => {
    const e = fdOf(fd);
    table().delete(fd);
    if (e.t === 'file' || e.t === 'dir') {
      // Another fd (or process) may share the handle only through renumber; close once per open.
      mount(e).close(e.h);
    } else if (e.t === 'sock') {
      const users = [...k.fds.values()].some((t) =>
        [...t.entries.values()].some((x) => x.t === 'sock' && x.sock === e.sock),
      );
      if (!users) {
        k.sockets.get(e.sock)?.close();
        k.sockets.delete(e.sock);
      }
    }
  };

  // args and environ share one layout: an array of pointers into NUL-terminated strings.
  const stringsSizes = (list: string[], nPtr: number, sizePtr: number) => {
    setU32(nPtr, list.length);
    setU32(
      sizePtr,
      list.reduce((a, s) => a + te.encode(s).length + 1, 0),
    );
    return 0;
  };
  const stringsGet = (list: string[], ptrs: number, buf: number) => {
    for (const s of list) {
      setU32(ptrs, buf);
      ptrs += 4;
      const b = te.encode(s + '\0');
      write(buf, b);
      buf += b.length;
    }
    return 0;
  };

  const wasi = {
    args_sizes_get: sys((n: number, size: number) => stringsSizes(p.argv, n, size)),
    args_get: sys((ptrs: number, buf: number) => stringsGet(p.argv, ptrs, buf)),
    environ_sizes_get: sys((n: number, size: number) => stringsSizes(p.env, n, size)),
    environ_get: sys((ptrs: number, buf: number) => stringsGet(p.env, ptrs, buf)),
    clock_res_get: sys((_id: number, ptr: number) => {
      setU64(ptr, 1000n);
      return 0;
    }),
    clock_time_get: sys((id: number, _prec: bigint, ptr: number) => {
      setU64(ptr, id === 0 ? k.clock.realtime() : k.clock.monotonic());
      return 0;
    }),
    random_get: sys((ptr: number, len: number) => {
      randomFillSync(u8().subarray(ptr, ptr + len));
      p.markDirty(ptr, len);
      return 0;
    }),
    proc_exit: (code: number) => {
      throw new ProcExit(code);
    },
    proc_raise: sys(() => Errno.NOSYS),
    sched_yield: blocking('yield', () => {
      // First entry: give up the slice. Re-entry after the rewind: done.
      if (p.pending === 'yield') {
        p.pending = null;
        return 0;
      }
      p.pending = 'yield';
      return BLOCK;
    }),

    fd_advise: sys((fd: number) => {
      fdOf(fd);
      return 0;
    }),
    fd_allocate: sys((fd: number, off: bigint, len: bigint) => {
      const e = fdOf(fd);
      if (e.t !== 'file') throw new WasiError(Errno.BADF);
      const fs = mount(e);
      const end = Number(off + len);
      if (fs.size(e.h) < end) fs.truncate(e.h, end);
      return 0;
    }),
    fd_close: sys((fd: number) => {
      closeFd(fd);
      return 0;
    }),
    fd_datasync: sys((fd: number) => {
      fdOf(fd);
      return 0;
    }),
    fd_sync: sys((fd: number) => {
      fdOf(fd);
      return 0;
    }),
    fd_fdstat_get: sys((fd: number, ptr: number) => {
      const e = fdOf(fd);
      const v = dv();
      v.setUint8(ptr, filetypeOf(e));
      v.setUint16(
        ptr + 2,
        (e.t === 'file' && e.append ? FDFLAGS.APPEND : 0) |
          ((e as any).nonblock ? FDFLAGS.NONBLOCK : 0),
        true,
      );
      v.setBigUint64(ptr + 8, ALL_RIGHTS, true);
      v.setBigUint64(ptr + 16, ALL_RIGHTS, true);
      p.markDirty(ptr, 24);
      return 0;
    }),
    fd_fdstat_set_flags: sys((fd: number, flags: number) => {
      const e = fdOf(fd);
      if (e.t === 'file') e.append = (flags & FDFLAGS.APPEND) !== 0;
      if (e.t === 'file' || e.t === 'sock') e.nonblock = (flags & FDFLAGS.NONBLOCK) !== 0;
      return 0;
    }),
    fd_fdstat_set_rights: sys(() => 0),
    fd_filestat_get: sys((fd: number, ptr: number) => {
      const e = fdOf(fd);
      if (e.t === 'file' || e.t === 'dir') writeFilestat(ptr, mount(e).stat(e.h));
      else writeFilestat(ptr, charStat(filetypeOf(e)));
      return 0;
    }),
    fd_filestat_set_size: sys((fd: number, size: bigint) => {
      const e = fdOf(fd);
      if (e.t !== 'file') throw new WasiError(Errno.BADF);
      mount(e).truncate(e.h, Number(size));
      return 0;
    }),
    fd_filestat_set_times: sys((fd: number, atim: bigint, mtim: bigint, flags: number) => {
      const e = fdOf(fd);
      if (e.t !== 'file' && e.t !== 'dir') return 0;
      const now = k.clock.realtime();
      mount(e).setTimes(
        e.h,
        flags & 2 ? now : flags & 1 ? atim : null,
        flags & 8 ? now : flags & 4 ? mtim : null,
      );
      return 0;
    }),
    fd_prestat_get: sys((fd: number, ptr: number) => {
      const e = table().get(fd);
      const name =
        e && (e.t === 'dir' || e.t === 'devdir' || e.t === 'netdir') ? e.preopen : undefined;
      if (name === undefined) return Errno.BADF;
      dv().setUint8(ptr, 0);
      setU32(ptr + 4, te.encode(name).length);
      return 0;
    }),
    fd_prestat_dir_name: sys((fd: number, ptr: number, len: number) => {
      const e = fdOf(fd);
      const name = e.t === 'dir' || e.t === 'devdir' || e.t === 'netdir' ? e.preopen : undefined;
      if (name === undefined) return Errno.BADF;
      write(ptr, te.encode(name).subarray(0, len));
      return 0;
    }),
    fd_read: blocking('read', (fd: number, iovs: number, n: number, nread: number) => {
      const e = fdOf(fd);
      const got = scatter(iovs, n, (dst) => readInto(e, dst));
      if (got === null) return BLOCK;
      setU32(nread, got);
      return 0;
    }),
    fd_pread: blocking(
      'read',
      (fd: number, iovs: number, n: number, offset: bigint, nread: number) => {
        const e = fdOf(fd);
        if (e.t !== 'file') throw new WasiError(e.t === 'sock' ? Errno.SPIPE : Errno.BADF);
        let pos = Number(offset);
        const got = scatter(iovs, n, (dst) => {
          const r = mount(e).read(e.h, pos, dst);
          pos += r;
          return r;
        });
        setU32(nread, got ?? 0);
        return 0;
      },
    ),
    fd_write: blocking('write', (fd: number, iovs: number, n: number, nwritten: number) => {
      const e = fdOf(fd);
      setU32(nwritten, writeFrom(e, gather(iovs, n)));
      return 0;
    }),
    fd_pwrite: blocking(
      'write',
      (fd: number, iovs: number, n: number, offset: bigint, nwritten: number) => {
        const e = fdOf(fd);
        if (e.t !== 'file') throw new WasiError(e.t === 'sock' ? Errno.SPIPE : Errno.BADF);
        setU32(nwritten, mount(e).write(e.h, Number(offset), gather(iovs, n)));
        return 0;
      },
    ),
    fd_seek: sys((fd: number, offset: bigint, whence: number, ptr: number) => {
      const e = fdOf(fd);
      if (e.t !== 'file')
        throw new WasiError(
          e.t === 'sock' || e.t === 'stdin' || e.t === 'stdout' || e.t === 'stderr'
            ? Errno.SPIPE
            : Errno.BADF,
        );
      const base =
        whence === 0 ? 0 : whence === 1 ? e.pos : whence === 2 ? mount(e).size(e.h) : NaN;
      if (Number.isNaN(base)) throw new WasiError(Errno.INVAL);
      const next = base + Number(offset);
      if (next < 0) throw new WasiError(Errno.INVAL);
      e.pos = next;
      setU64(ptr, BigInt(next));
      return 0;
    }),
    fd_tell: sys((fd: number, ptr: number) => {
      const e = fdOf(fd);
      if (e.t !== 'file') throw new WasiError(Errno.SPIPE);
      setU64(ptr, BigInt(e.pos));
      return 0;
    }),
    fd_readdir: sys((fd: number, buf: number, len: number, cookie: bigint, usedPtr: number) => {
      const e = fdOf(fd);
      let entries: Array<{ name: string; ino: bigint; filetype: number }>;
      if (e.t === 'dir') entries = mount(e).readdir(e.h);
      else if (e.t === 'devdir')
        entries = ['.', '..', 'checkpoint', 'null', 'urandom', 'zero'].map((name, i) => ({
          name,
          ino: BigInt(i + 1),
          filetype: i < 2 ? FileType.DIRECTORY : FileType.CHARACTER_DEVICE,
        }));
      else if (e.t === 'netdir')
        entries = ['.', '..', ...(e.sub ? [] : ['tcp'])].map((name, i) => ({
          name,
          ino: BigInt(i + 1),
          filetype: FileType.DIRECTORY,
        }));
      else throw new WasiError(Errno.NOTDIR);
      const out = new Uint8Array(len);
      let used = 0;
      for (let i = Number(cookie); i < entries.length && used < len; i++) {
        const name = te.encode(entries[i].name);
        const rec = new Uint8Array(24 + name.length);
        const rv = new DataView(rec.buffer);
        rv.setBigUint64(0, BigInt(i + 1), true);
        rv.setBigUint64(8, entries[i].ino, true);
        rv.setUint32(16, name.length, true);
        rv.setUint8(20, entries[i].filetype);
        rec.set(name, 24);
        const take = Math.min(rec.length, len - used);
        out.set(rec.subarray(0, take), used);
        used += take;
      }
      write(buf, out.subarray(0, used));
      setU32(usedPtr, used);
      return 0;
    }),
    fd_renumber: sys((from: number, to: number) => {
      const e = fdOf(from);
      fdOf(to);
      closeFd(to);
      table().entries.set(to, e);
      table().delete(from);
      return 0;
    }),

    path_open: blocking(
      'connect',
      (
        dirfd: number,
        dirflags: number,
        pathPtr: number,
        pathLen: number,
        oflags: number,
        _rb: bigint,
        _ri: bigint,
        fdflags: number,
        fdOut: number,
      ) => {
        const r = openPath(dirfd, dirflags, str(pathPtr, pathLen), oflags, fdflags);
        if (r === BLOCK) return BLOCK;
        setU32(fdOut, r);
        return 0;
      },
    ),
    path_create_directory: sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = dirOf(fd);
      fs.mkdir(h, str(ptr, len));
      return 0;
    }),
    path_unlink_file: sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = dirOf(fd);
      fs.unlink(h, str(ptr, len));
      return 0;
    }),
    path_remove_directory: sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = dirOf(fd);
      fs.rmdir(h, str(ptr, len));
      return 0;
    }),
    path_rename: sys((fd: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
      const a = dirOf(fd),
        b = dirOf(nfd);
      if (a.mount !== b.mount) throw new WasiError(Errno.XDEV);
      a.fs.rename(a.h, str(op, ol), b.h, str(np, nl));
      return 0;
    }),
    path_link: sys(
      (fd: number, _flags: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
        const a = dirOf(fd),
          b = dirOf(nfd);
        if (a.mount !== b.mount) throw new WasiError(Errno.XDEV);
        a.fs.link(a.h, str(op, ol), b.h, str(np, nl));
        return 0;
      },
    ),
    path_symlink: sys((op: number, ol: number, fd: number, np: number, nl: number) => {
      const { fs, h } = dirOf(fd);
      fs.symlink(str(op, ol), h, str(np, nl));
      return 0;
    }),
    path_readlink: sys(
      (fd: number, ptr: number, len: number, buf: number, bufLen: number, usedPtr: number) => {
        const { fs, h } = dirOf(fd);
        const target = te.encode(fs.readlink(h, str(ptr, len))).subarray(0, bufLen);
        write(buf, target);
        setU32(usedPtr, target.length);
        return 0;
      },
    ),
    path_filestat_get: sys((fd: number, flags: number, ptr: number, len: number, out: number) => {
      const d = fdOf(fd);
      const name = str(ptr, len);
      if (d.t === 'devdir') {
        if (name === '.' || name === '') writeFilestat(out, charStat(FileType.DIRECTORY));
        else if (['null', 'zero', 'urandom', 'checkpoint'].includes(name))
          writeFilestat(out, charStat(FileType.CHARACTER_DEVICE));
        else throw new WasiError(Errno.NOENT);
        return 0;
      }
      if (d.t === 'netdir') {
        writeFilestat(out, charStat(FileType.DIRECTORY));
        return 0;
      }
      const { fs, h } = dirOf(fd);
      writeFilestat(out, fs.statPath(h, name, (flags & 1) !== 0));
      return 0;
    }),
    path_filestat_set_times: sys(
      (
        fd: number,
        flags: number,
        ptr: number,
        len: number,
        atim: bigint,
        mtim: bigint,
        fst: number,
      ) => {
        const { fs, h } = dirOf(fd);
        const target = fs.open(h, str(ptr, len), { follow: (flags & 1) !== 0 });
        try {
          const now = k.clock.realtime();
          fs.setTimes(
            target,
            fst & 2 ? now : fst & 1 ? atim : null,
            fst & 8 ? now : fst & 4 ? mtim : null,
          );
        } finally {
          fs.close(target);
        }
        return 0;
      },
    ),

    poll_oneoff: blocking(
      'poll',
      (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) => {
        const v = dv();
        const events: Array<{ userdata: bigint; error: number; type: number; nbytes: bigint }> = [];
        let deadline: bigint | undefined;
        let onlyClocks = true;
        for (let i = 0; i < nsubs; i++) {
          const s = inPtr + i * 48;
          const userdata = v.getBigUint64(s, true);
          const tag = v.getUint8(s + 8);
          if (tag === 0) {
            const timeout = v.getBigUint64(s + 24, true);
            const abs = (v.getUint16(s + 40, true) & 1) !== 0;
            const clockId = v.getUint32(s + 16, true);
            // Keep the deadline of the first entry into this syscall: a wake-up or a
            // restore must not restart the sleep.
            let until = p.wait?.until;
            if (until === undefined) {
              const now = clockId === 0 ? k.clock.realtime() : k.clock.monotonic();
              until = k.clock.monotonic() + (abs ? timeout - now : timeout);
            }
            deadline = deadline === undefined || until < deadline ? until : deadline;
            if (k.clock.monotonic() >= until)
              events.push({ userdata, error: 0, type: 0, nbytes: 0n });
          } else {
            onlyClocks = false;
            const fd = v.getUint32(s + 16, true);
            const e = table().get(fd);
            if (!e) events.push({ userdata, error: Errno.BADF, type: tag, nbytes: 0n });
            else if (tag === 2 || readable(e))
              events.push({ userdata, error: 0, type: tag, nbytes: 1n });
          }
        }
        if (events.length === 0) {
          p.wait = { reason: onlyClocks ? 'sleep' : 'poll', until: deadline };
          if (deadline !== undefined) k.timer(p, deadline);
          return BLOCK;
        }
        for (let i = 0; i < events.length; i++) {
          const o = outPtr + i * 32;
          v.setBigUint64(o, events[i].userdata, true);
          v.setUint16(o + 8, events[i].error, true);
          v.setUint8(o + 10, events[i].type);
          v.setBigUint64(o + 16, events[i].nbytes, true);
          v.setUint16(o + 24, 0, true);
        }
        p.markDirty(outPtr, events.length * 32);
        setU32(neventsPtr, events.length);
        return 0;
      },
    ),

    sock_accept: blocking('accept', (fd: number, flags: number, out: number) => {
      const e = fdOf(fd);
      const s = sock(e);
      if (!(s instanceof Listener)) throw new WasiError(Errno.INVAL);
      const conn = k.fenced ? null : s.accept();
      if (!conn) {
        if ((e as any).nonblock) throw new WasiError(Errno.AGAIN);
        return BLOCK;
      }
      const id = k.nextSock++;
      k.sockets.set(
        id,
        new Connection(`${conn.remoteAddress}:${conn.remotePort}`, conn, () => k.wakeAll()),
      );
      setU32(out, table().add({ t: 'sock', sock: id, nonblock: (flags & FDFLAGS.NONBLOCK) !== 0 }));
      return 0;
    }),
    sock_recv: blocking(
      'recv',
      (fd: number, iovs: number, n: number, riFlags: number, lenPtr: number, flagsPtr: number) => {
        const e = fdOf(fd);
        const s = sock(e);
        if (!(s instanceof Connection)) throw new WasiError(Errno.NOTCONN);
        const got = scatter(iovs, n, (dst) => {
          const r = s.read(dst, (riFlags & 1) !== 0);
          if (r === null && e.t === 'sock' && e.nonblock) throw new WasiError(Errno.AGAIN);
          return r;
        });
        if (got === null) return BLOCK;
        setU32(lenPtr, got);
        dv().setUint16(flagsPtr, 0, true);
        return 0;
      },
    ),
    sock_send: blocking(
      'send',
      (fd: number, iovs: number, n: number, _flags: number, lenPtr: number) => {
        const s = sock(fdOf(fd));
        if (!(s instanceof Connection)) throw new WasiError(Errno.NOTCONN);
        setU32(lenPtr, s.write(gather(iovs, n)));
        return 0;
      },
    ),
    sock_shutdown: sys((fd: number, how: number) => {
      const s = sock(fdOf(fd));
      if (!(s instanceof Connection)) throw new WasiError(Errno.NOTCONN);
      s.shutdown(how);
      return 0;
    }),
  };

  const poll = (kind: number) => {
    p.enterSyscall();
    const now = performance.now();
    if (now >= k.scheduler.sliceEnd) {
      p.unwind(null);
      return;
    }
    // Aim for a trip into the kernel about every half millisecond, per poll class.
    const c = kind === 0 ? 0 : 1;
    const since = now - p.lastPoll[c];
    if (since < 0.25 && p.fuelPerPoll[c] < 1 << 24) p.fuelPerPoll[c] *= 2;
    // Too slow: scale down to the pace just seen at once (halving could take many late trips).
    else if (since > 1)
      p.fuelPerPoll[c] = Math.max(c === 0 ? 64 : 1, Math.floor((p.fuelPerPoll[c] * 0.5) / since));
    p.lastPoll[c] = now;
    p.setFuel(c, p.fuelPerPoll[c]);
  };

  return { wasi_snapshot_preview1: wasi, roam: { poll } };
}
