// path_*: operations on names relative to a directory descriptor.
import { Errno, FileType, WasiError } from '../errno.js';
import type { Fd } from '../fdtable.js';
import { devFiletype, devLookup, netLookup } from './devices.js';
import { chosenTimes } from './fd.js';
import { utf8 } from './memory.js';
import { ALL_RIGHTS, R, childRights, need } from './rights.js';
import { connect } from './sock.js';
import {
  BLOCK,
  FDFLAGS,
  LOOKUP_SYMLINK_FOLLOW,
  OFLAGS,
  SYNC_FLAGS,
  charStat,
  type Result,
  type Sys,
} from './syscall.js';

/** Open `path` under `dirfd`: a file, a directory, a device, or a TCP connection under /net. */
/** What path_open was asked for. */
interface OpenRequest {
  dirflags: number;
  path: string;
  oflags: number;
  base: number;
  inheriting: number;
  fdflags: number;
}

/** Add `child`, opened through `parent`, with the rights asked for that `parent` can pass on. */
function addChild(s: Sys, parent: Fd, child: Fd, o: OpenRequest): number {
  return s.table().add({ ...child, ...childRights(parent, child, o.base, o.inheriting) });
}

/** Open a name under `dirfd`: a file, a directory, a device, or a TCP connection under /net. */
function openPath(s: Sys, dirfd: number, o: OpenRequest): Result {
  const d = s.fd(dirfd);
  if (d.t === 'file') throw new WasiError(Errno.NOTDIR);
  need(d, R.PATH_OPEN);
  if (o.oflags & OFLAGS.CREAT) need(d, R.PATH_CREATE_FILE);
  if (o.oflags & OFLAGS.TRUNC) need(d, R.PATH_FILESTAT_SET_SIZE);
  if (d.t === 'devdir') return addChild(s, d, devLookup(o.path), o);
  if (d.t === 'netdir') {
    const r = netLookup(d, o.path);
    if ('dir' in r) return addChild(s, d, { t: 'netdir', sub: r.dir }, o);
    const fd = connect(s, r.tcp, (o.fdflags & FDFLAGS.NONBLOCK) !== 0);
    if (fd !== BLOCK) Object.assign(s.fd(fd), childRights(d, s.fd(fd), o.base, o.inheriting));
    return fd;
  }
  return s.table().add(openFile(s, dirfd, o));
}

/** Open (or create) a file or directory in a file system; the entry for the fd table. */
function openFile(s: Sys, dirfd: number, o: OpenRequest): Fd {
  const { fs, h, mount } = s.dir(dirfd);
  const { dirflags, path, oflags, fdflags } = o;
  const opened = fs.open(h, path, {
    create: (oflags & OFLAGS.CREAT) !== 0,
    excl: (oflags & OFLAGS.EXCL) !== 0,
    trunc: (oflags & OFLAGS.TRUNC) !== 0,
    directory: (oflags & OFLAGS.DIRECTORY) !== 0,
    follow: (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0,
  });
  const isDir = fs.stat(opened).filetype === FileType.DIRECTORY;
  if (isDir && o.base & R.FD_WRITE) {
    fs.close(opened);
    throw new WasiError(Errno.ISDIR, 'a directory opened for writing');
  }
  const e: Fd = isDir
    ? { t: 'dir', mount, h: opened }
    : {
        t: 'file',
        mount,
        h: opened,
        pos: 0,
        append: (fdflags & FDFLAGS.APPEND) !== 0,
        nonblock: (fdflags & FDFLAGS.NONBLOCK) !== 0,
        sync: fdflags & SYNC_FLAGS || undefined,
      };
  return { ...e, ...childRights(s.fd(dirfd), e, o.base, o.inheriting) };
}

/** `fd` as a directory holding the rights `r`. */
function dirWith(s: Sys, fd: number, r: number) {
  const d = s.dir(fd);
  need(s.fd(fd), r);
  return d;
}

/** Creating, removing and renaming names. */
function nameCalls(s: Sys) {
  const m = s.mem;
  return {
    path_create_directory: s.sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = dirWith(s, fd, R.PATH_CREATE_DIRECTORY);
      fs.mkdir(h, m.str(ptr, len));
      return 0;
    }),
    path_unlink_file: s.sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = dirWith(s, fd, R.PATH_UNLINK_FILE);
      fs.unlink(h, m.str(ptr, len));
      return 0;
    }),
    path_remove_directory: s.sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = dirWith(s, fd, R.PATH_REMOVE_DIRECTORY);
      fs.rmdir(h, m.str(ptr, len));
      return 0;
    }),
    path_rename: s.sys(
      (fd: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
        const a = dirWith(s, fd, R.PATH_RENAME_SOURCE);
        const b = dirWith(s, nfd, R.PATH_RENAME_TARGET);
        if (a.mount !== b.mount) throw new WasiError(Errno.XDEV);
        a.fs.rename(a.h, m.str(op, ol), b.h, m.str(np, nl));
        return 0;
      },
    ),
    path_link: s.sys(
      (fd: number, flags: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
        const a = dirWith(s, fd, R.PATH_LINK_SOURCE);
        const b = dirWith(s, nfd, R.PATH_LINK_TARGET);
        // Linking what a symlink points at (linkat's AT_SYMLINK_FOLLOW) is not offered.
        if (flags & LOOKUP_SYMLINK_FOLLOW) throw new WasiError(Errno.INVAL, 'path_link follows');
        if (a.mount !== b.mount) throw new WasiError(Errno.XDEV);
        a.fs.link(a.h, m.str(op, ol), b.h, m.str(np, nl));
        return 0;
      },
    ),
    path_symlink: s.sys((op: number, ol: number, fd: number, np: number, nl: number) => {
      const { fs, h } = dirWith(s, fd, R.PATH_SYMLINK);
      const target = m.str(op, ol);
      // A link to an absolute path could never be followed inside the sandbox.
      if (target.startsWith('/')) throw new WasiError(Errno.NOTCAPABLE, 'absolute symlink target');
      fs.symlink(target, h, m.str(np, nl));
      return 0;
    }),
    path_readlink: s.sys(
      (fd: number, ptr: number, len: number, buf: number, bufLen: number, usedPtr: number) => {
        const { fs, h } = dirWith(s, fd, R.PATH_READLINK);
        const target = utf8(fs.readlink(h, m.str(ptr, len))).subarray(0, bufLen);
        m.write(buf, target);
        m.setU32(usedPtr, target.length);
        return 0;
      },
    ),
  };
}

/** Opening, and the metadata of names. */
function statCalls(s: Sys) {
  const m = s.mem;
  return {
    path_open: s.blocking(
      'connect',
      (
        dirfd: number,
        dirflags: number,
        pathPtr: number,
        pathLen: number,
        oflags: number,
        base: bigint,
        inheriting: bigint,
        fdflags: number,
        fdOut: number,
      ) => {
        const path = m.str(pathPtr, pathLen);
        const r = openPath(s, dirfd, {
          dirflags,
          path,
          oflags,
          base: Number(base & BigInt(ALL_RIGHTS)),
          inheriting: Number(inheriting & BigInt(ALL_RIGHTS)),
          fdflags,
        });
        if (r === BLOCK) return BLOCK;
        m.setU32(fdOut, r);
        return 0;
      },
    ),
    path_filestat_get: s.sys((fd: number, flags: number, ptr: number, len: number, out: number) => {
      const d = s.fd(fd);
      const name = m.str(ptr, len);
      if (d.t !== 'file') need(d, R.PATH_FILESTAT_GET);
      if (d.t === 'devdir') s.writeFilestat(out, charStat(devFiletype(name)));
      else if (d.t === 'netdir') s.writeFilestat(out, charStat(FileType.DIRECTORY));
      else {
        const { fs, h } = s.dir(fd);
        s.writeFilestat(out, fs.statPath(h, name, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0));
      }
      return 0;
    }),
    path_filestat_set_times: s.sys(
      (
        fd: number,
        flags: number,
        ptr: number,
        len: number,
        atim: bigint,
        mtim: bigint,
        fst: number,
      ) => {
        const t = chosenTimes(s.k.clock.realtime(), atim, mtim, fst);
        const { fs, h } = dirWith(s, fd, R.PATH_FILESTAT_SET_TIMES);
        // Without SYMLINK_FOLLOW a symlink's own times are set (utimensat's AT_SYMLINK_NOFOLLOW).
        const target = fs.lookup(h, m.str(ptr, len), (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
        fs.setTimes(target, t.atim, t.mtim);
        return 0;
      },
    ),
  };
}

export function pathImports(s: Sys): WebAssembly.ModuleImports {
  return { ...nameCalls(s), ...statCalls(s) };
}
