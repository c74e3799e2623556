// path_*: operations on names relative to a directory descriptor.
import { Errno, FileType, WasiError } from '../errno.js';
import { devFiletype, devLookup, netLookup } from './devices.js';
import { utf8 } from './memory.js';
import { connect } from './sock.js';
import {
  BLOCK,
  FDFLAGS,
  LOOKUP_SYMLINK_FOLLOW,
  OFLAGS,
  charStat,
  type Result,
  type Sys,
} from './syscall.js';

/** Open `path` under `dirfd`: a file, a directory, a device, or a TCP connection under /net. */
function openPath(
  s: Sys,
  dirfd: number,
  dirflags: number,
  path: string,
  oflags: number,
  fdflags: number,
): Result {
  const d = s.fd(dirfd);
  if (d.t === 'devdir') return s.table().add(devLookup(path));
  if (d.t === 'netdir') {
    const r = netLookup(d, path);
    if ('dir' in r) return s.table().add({ t: 'netdir', preopen: d.preopen, sub: r.dir });
    return connect(s, r.tcp, (fdflags & FDFLAGS.NONBLOCK) !== 0);
  }
  const { fs, h, mount } = s.dir(dirfd);
  const opened = fs.open(h, path, {
    create: (oflags & OFLAGS.CREAT) !== 0,
    excl: (oflags & OFLAGS.EXCL) !== 0,
    trunc: (oflags & OFLAGS.TRUNC) !== 0,
    directory: (oflags & OFLAGS.DIRECTORY) !== 0,
    follow: (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0,
  });
  const isDir = fs.stat(opened).filetype === FileType.DIRECTORY;
  return s.table().add(
    isDir
      ? { t: 'dir', mount, h: opened }
      : {
          t: 'file',
          mount,
          h: opened,
          pos: 0,
          append: (fdflags & FDFLAGS.APPEND) !== 0,
          nonblock: (fdflags & FDFLAGS.NONBLOCK) !== 0,
        },
  );
}

/** Creating, removing and renaming names. */
function nameCalls(s: Sys) {
  const m = s.mem;
  return {
    path_create_directory: s.sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = s.dir(fd);
      fs.mkdir(h, m.str(ptr, len));
      return 0;
    }),
    path_unlink_file: s.sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = s.dir(fd);
      fs.unlink(h, m.str(ptr, len));
      return 0;
    }),
    path_remove_directory: s.sys((fd: number, ptr: number, len: number) => {
      const { fs, h } = s.dir(fd);
      fs.rmdir(h, m.str(ptr, len));
      return 0;
    }),
    path_rename: s.sys(
      (fd: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
        const a = s.dir(fd);
        const b = s.dir(nfd);
        if (a.mount !== b.mount) throw new WasiError(Errno.XDEV);
        a.fs.rename(a.h, m.str(op, ol), b.h, m.str(np, nl));
        return 0;
      },
    ),
    path_link: s.sys(
      (fd: number, _flags: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
        const a = s.dir(fd);
        const b = s.dir(nfd);
        if (a.mount !== b.mount) throw new WasiError(Errno.XDEV);
        a.fs.link(a.h, m.str(op, ol), b.h, m.str(np, nl));
        return 0;
      },
    ),
    path_symlink: s.sys((op: number, ol: number, fd: number, np: number, nl: number) => {
      const { fs, h } = s.dir(fd);
      fs.symlink(m.str(op, ol), h, m.str(np, nl));
      return 0;
    }),
    path_readlink: s.sys(
      (fd: number, ptr: number, len: number, buf: number, bufLen: number, usedPtr: number) => {
        const { fs, h } = s.dir(fd);
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
        _rightsBase: bigint,
        _rightsInheriting: bigint,
        fdflags: number,
        fdOut: number,
      ) => {
        const r = openPath(s, dirfd, dirflags, m.str(pathPtr, pathLen), oflags, fdflags);
        if (r === BLOCK) return BLOCK;
        m.setU32(fdOut, r);
        return 0;
      },
    ),
    path_filestat_get: s.sys((fd: number, flags: number, ptr: number, len: number, out: number) => {
      const d = s.fd(fd);
      const name = m.str(ptr, len);
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
        const { fs, h } = s.dir(fd);
        const target = fs.open(h, m.str(ptr, len), {
          follow: (flags & LOOKUP_SYMLINK_FOLLOW) !== 0,
        });
        try {
          const now = s.k.clock.realtime();
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
  };
}

export function pathImports(s: Sys): WebAssembly.ModuleImports {
  return { ...nameCalls(s), ...statCalls(s) };
}
