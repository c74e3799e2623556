// fd_*: operations on an open descriptor.
import { Errno, WasiError } from '../errno.js';
import type { Fd } from '../fdtable.js';
import { devdirEntries, netdirEntries } from './devices.js';
import { filetypeOf, readInto, writeFrom } from './io.js';
import { utf8, utf8Length } from './memory.js';
import { ALL_RIGHTS, R, narrow, need, rightsOf } from './rights.js';
import { BLOCK, FDFLAGS, SYNC_FLAGS, charStat, isStdio, preopenOf, type Sys } from './syscall.js';

/** Close `fd`; a socket is closed with its last descriptor in any process. */
export function closeFd(s: Sys, fd: number): void {
  const e = s.fd(fd);
  s.table().delete(fd);
  if (e.t === 'file' || e.t === 'dir') {
    // Another fd (or process) may share the handle only through renumber; close once per open.
    s.mount(e).close(e.h);
  } else if (e.t === 'sock') {
    const users = [...s.k.fds.values()].some((t) =>
      [...t.entries.values()].some((x) => x.t === 'sock' && x.sock === e.sock),
    );
    if (!users) {
      s.k.sockets.get(e.sock)?.close();
      s.k.sockets.delete(e.sock);
    }
  }
}

/** `fd` as a regular file holding the rights `r`. */
const fileOf = (s: Sys, fd: number, r: number): Extract<Fd, { t: 'file' }> => {
  const e = s.fd(fd);
  if (e.t !== 'file') throw new WasiError(e.t === 'dir' ? Errno.ISDIR : Errno.BADF);
  need(e, r);
  return e;
};

/** `fd`, holding the rights `r`. */
const withRights = (s: Sys, fd: number, r: number, errno?: number): Fd => {
  const e = s.fd(fd);
  need(e, r, errno);
  return e;
};

/** The timestamps fd/path_filestat_set_times asks for: null = leave it; a time and NOW at once is INVAL. */
export function chosenTimes(now: bigint, atim: bigint, mtim: bigint, fst: number) {
  if ((fst & 3) === 3 || (fst & 12) === 12) throw new WasiError(Errno.INVAL, 'a time and NOW');
  if (fst & ~15) throw new WasiError(Errno.INVAL, 'unknown fstflags');
  return {
    atim: fst & 2 ? now : fst & 1 ? atim : null,
    mtim: fst & 8 ? now : fst & 4 ? mtim : null,
  };
}

/** Descriptor state: flags, stat, times, size. */
function stateCalls(s: Sys) {
  const m = s.mem;
  return {
    fd_advise: s.sys((fd: number, _off: bigint, _len: bigint, advice: number) => {
      withRights(s, fd, R.FD_ADVISE);
      if (advice > 5) throw new WasiError(Errno.INVAL, 'unknown advice');
      return 0;
    }),
    fd_allocate: s.sys((fd: number, off: bigint, len: bigint) => {
      const e = fileOf(s, fd, R.FD_ALLOCATE);
      const fs = s.mount(e);
      const end = Number(off + len);
      if (fs.size(e.h) < end) fs.truncate(e.h, end);
      return 0;
    }),
    fd_close: s.sys((fd: number) => (closeFd(s, fd), 0)),
    fd_datasync: s.sys((fd: number) => (withRights(s, fd, R.FD_DATASYNC), 0)),
    fd_sync: s.sys((fd: number) => (withRights(s, fd, R.FD_SYNC), 0)),
    fd_fdstat_get: s.sys((fd: number, ptr: number) => {
      const e = s.fd(fd);
      m.setU8(ptr, filetypeOf(s, e));
      const nonblock = (e.t === 'file' || e.t === 'sock') && e.nonblock === true;
      const file = e.t === 'file' ? (e.append ? FDFLAGS.APPEND : 0) | (e.sync ?? 0) : 0;
      m.setU16(ptr + 2, file | (nonblock ? FDFLAGS.NONBLOCK : 0));
      const r = rightsOf(e);
      m.setU64(ptr + 8, BigInt(r.base));
      m.setU64(ptr + 16, BigInt(r.inheriting));
      m.dirty(ptr, 24);
      return 0;
    }),
    fd_fdstat_set_flags: s.sys((fd: number, flags: number) => {
      const e = withRights(s, fd, R.FD_FDSTAT_SET_FLAGS);
      if (e.t === 'file') {
        e.append = (flags & FDFLAGS.APPEND) !== 0;
        e.sync = flags & SYNC_FLAGS || undefined;
      }
      if (e.t === 'file' || e.t === 'sock') e.nonblock = (flags & FDFLAGS.NONBLOCK) !== 0;
      return 0;
    }),
    fd_fdstat_set_rights: s.sys((fd: number, base: bigint, inheriting: bigint) => {
      if (base > BigInt(ALL_RIGHTS) || inheriting > BigInt(ALL_RIGHTS))
        throw new WasiError(Errno.NOTCAPABLE, 'unknown rights');
      narrow(s.fd(fd), Number(base), Number(inheriting));
      return 0;
    }),
    fd_filestat_get: s.sys((fd: number, ptr: number) => {
      const e = withRights(s, fd, R.FD_FILESTAT_GET);
      if (e.t === 'file' || e.t === 'dir') s.writeFilestat(ptr, s.mount(e).stat(e.h));
      else s.writeFilestat(ptr, charStat(filetypeOf(s, e)));
      return 0;
    }),
    fd_filestat_set_size: s.sys((fd: number, size: bigint) => {
      const e = fileOf(s, fd, R.FD_FILESTAT_SET_SIZE);
      s.mount(e).truncate(e.h, Number(size));
      return 0;
    }),
    fd_filestat_set_times: s.sys((fd: number, atim: bigint, mtim: bigint, flags: number) => {
      const t = chosenTimes(s.k.clock.realtime(), atim, mtim, flags);
      const e = s.fd(fd);
      if (e.t !== 'file' && e.t !== 'dir') return 0;
      need(e, R.FD_FILESTAT_SET_TIMES);
      s.mount(e).setTimes(e.h, t.atim, t.mtim);
      return 0;
    }),
  };
}

/** Preopens: their names. */
function prestatCalls(s: Sys) {
  const m = s.mem;
  return {
    fd_prestat_get: s.sys((fd: number, ptr: number) => {
      const name = preopenOf(s.table().get(fd));
      if (name === undefined) return Errno.BADF;
      m.setU8(ptr, 0);
      m.setU32(ptr + 4, utf8Length(name));
      return 0;
    }),
    fd_prestat_dir_name: s.sys((fd: number, ptr: number, len: number) => {
      const name = preopenOf(s.fd(fd));
      if (name === undefined) return Errno.BADF;
      const bytes = utf8(name);
      if (len < bytes.length) return Errno.NAMETOOLONG;
      m.write(ptr, bytes);
      return 0;
    }),
  };
}

/** Data: read, write, positioned and not. */
function ioCalls(s: Sys) {
  const m = s.mem;
  return {
    fd_read: s.blocking('read', (fd: number, iovs: number, n: number, nread: number) => {
      const e = withRights(s, fd, R.FD_READ, Errno.BADF);
      const got = m.scatter(iovs, n, (dst) => readInto(s, e, dst));
      if (got === null) return BLOCK;
      m.setU32(nread, got);
      return 0;
    }),
    fd_pread: s.blocking(
      'read',
      (fd: number, iovs: number, n: number, offset: bigint, nread: number) => {
        const e = withRights(s, fd, R.FD_READ, Errno.BADF);
        if (e.t !== 'file') throw new WasiError(e.t === 'sock' ? Errno.SPIPE : Errno.BADF);
        let pos = Number(offset);
        const got = m.scatter(iovs, n, (dst) => {
          const r = s.mount(e).read(e.h, pos, dst);
          pos += r;
          return r;
        });
        m.setU32(nread, got ?? 0);
        return 0;
      },
    ),
    fd_write: s.blocking('write', (fd: number, iovs: number, n: number, nwritten: number) => {
      const e = withRights(s, fd, R.FD_WRITE, Errno.BADF);
      // A pipe whose reader is slower than the program: wait until it has drained.
      const std = e.t === 'stdout' ? 1 : e.t === 'stderr' ? 2 : 0;
      if (std !== 0 && s.k.stdio.full(std)) return BLOCK;
      m.setU32(nwritten, writeFrom(s, e, m.gather(iovs, n)));
      return 0;
    }),
    fd_pwrite: s.blocking(
      'write',
      (fd: number, iovs: number, n: number, offset: bigint, nwritten: number) => {
        const e = withRights(s, fd, R.FD_WRITE, Errno.BADF);
        if (e.t !== 'file') throw new WasiError(e.t === 'sock' ? Errno.SPIPE : Errno.BADF);
        m.setU32(nwritten, s.mount(e).write(e.h, Number(offset), m.gather(iovs, n)));
        return 0;
      },
    ),
  };
}

/** Position, directory listing, renumbering. */
function seekCalls(s: Sys) {
  const m = s.mem;
  return {
    fd_seek: s.sys((fd: number, offset: bigint, whence: number, ptr: number) => {
      // A seek that only asks where the fd is needs FD_TELL, any other FD_SEEK.
      const tell = whence === 1 && offset === 0n;
      const e = s.fd(fd);
      if (e.t !== 'file')
        throw new WasiError(e.t === 'sock' || isStdio(e) ? Errno.SPIPE : Errno.BADF);
      need(e, tell ? R.FD_TELL : R.FD_SEEK);
      const base =
        whence === 0 ? 0 : whence === 1 ? e.pos : whence === 2 ? s.mount(e).size(e.h) : NaN;
      if (Number.isNaN(base)) throw new WasiError(Errno.INVAL);
      const next = base + Number(offset);
      if (next < 0) throw new WasiError(Errno.INVAL);
      e.pos = next;
      m.setU64(ptr, BigInt(next));
      return 0;
    }),
    fd_tell: s.sys((fd: number, ptr: number) => {
      const e = s.fd(fd);
      if (e.t !== 'file')
        throw new WasiError(e.t === 'sock' || isStdio(e) ? Errno.SPIPE : Errno.BADF);
      need(e, R.FD_TELL);
      m.setU64(ptr, BigInt(e.pos));
      return 0;
    }),
    fd_readdir: s.sys((fd: number, buf: number, len: number, cookie: bigint, used: number) =>
      readdir(s, fd, buf, len, cookie, used),
    ),
    fd_renumber: s.sys((from: number, to: number) => {
      const e = s.fd(from);
      s.fd(to);
      closeFd(s, to);
      s.table().entries.set(to, e);
      s.table().delete(from);
      return 0;
    }),
  };
}

/** Dirents from `cookie` on, packed into `len` bytes (the last one cut short if it must be). */
function readdir(s: Sys, fd: number, buf: number, len: number, cookie: bigint, usedPtr: number) {
  const e = s.fd(fd);
  if (e.t === 'file') throw new WasiError(Errno.NOTDIR);
  need(e, R.FD_READDIR);
  const entries =
    e.t === 'dir'
      ? s.mount(e).readdir(e.h)
      : e.t === 'devdir'
        ? devdirEntries()
        : e.t === 'netdir'
          ? netdirEntries(e.sub)
          : null;
  if (!entries) throw new WasiError(Errno.NOTDIR);
  const out = new Uint8Array(len);
  let used = 0;
  for (let i = Number(cookie); i < entries.length && used < len; i++) {
    const name = utf8(entries[i].name);
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
  s.mem.write(buf, out.subarray(0, used));
  s.mem.setU32(usedPtr, used);
  return 0;
}

export function fdImports(s: Sys): WebAssembly.ModuleImports {
  return { ...stateCalls(s), ...prestatCalls(s), ...ioCalls(s), ...seekCalls(s) };
}
