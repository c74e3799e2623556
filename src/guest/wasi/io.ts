// Reading and writing any kind of fd: stdio, files, devices, sockets. fd_read and
// fd_write (and poll_oneoff's readiness) dispatch on the fd's kind here.
import { Errno, FileType, WasiError } from '../errno.js';
import type { Fd } from '../fdtable.js';
import { isStream, Listener } from '../net.js';
import { ProcExit } from '../process.js';
import { SIGPIPE_STATUS } from '../stdio.js';
import { devRead, devWrite } from './devices.js';
import type { Sys } from './syscall.js';

/** Read from any readable fd; null = would block. */
export function readInto(s: Sys, e: Fd, dst: Uint8Array): number | null {
  switch (e.t) {
    case 'stdin':
      return s.k.stdio.readStdin(dst);
    case 'file': {
      const n = s.mount(e).read(e.h, e.pos, dst);
      e.pos += n;
      return n;
    }
    case 'dev':
      return devRead(s.k, e, dst);
    case 'sock': {
      const c = s.sock(e);
      if (!isStream(c)) throw new WasiError(Errno.NOTCONN);
      const n = c.read(dst);
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
}

export function writeFrom(s: Sys, e: Fd, src: Uint8Array): number {
  switch (e.t) {
    case 'stdout':
    case 'stderr': {
      const fd = e.t === 'stdout' ? 1 : 2;
      // The reader is gone: the program ends as SIGPIPE ends one on a host.
      if (s.k.stdio.closed(fd)) throw new ProcExit(SIGPIPE_STATUS);
      s.k.stdio.write(fd, src);
      return src.length;
    }
    case 'file': {
      const fs = s.mount(e);
      if (e.append) e.pos = fs.size(e.h);
      const n = fs.write(e.h, e.pos, src);
      e.pos += n;
      return n;
    }
    case 'dev':
      return devWrite(s.k, e, src);
    case 'sock': {
      const c = s.sock(e);
      if (!isStream(c)) throw new WasiError(Errno.NOTCONN);
      return c.write(src);
    }
    case 'dir':
    case 'devdir':
    case 'netdir':
      throw new WasiError(Errno.ISDIR);
    default:
      throw new WasiError(Errno.BADF);
  }
}

/** Would a read of `e` return now (data, EOF or an error) rather than block? */
export function readable(s: Sys, e: Fd): boolean {
  if (e.t === 'sock') {
    const c = s.k.sockets.get(e.sock);
    return c instanceof Listener ? !s.k.fenced && c.pending > 0 : isStream(c) ? c.readable() : true;
  }
  if (e.t === 'stdin') return s.k.stdio.readStdin(new Uint8Array(0)) !== null;
  return true;
}

export function filetypeOf(s: Sys, e: Fd): number {
  switch (e.t) {
    case 'stdin':
    case 'stdout':
    case 'stderr':
      return FileType.CHARACTER_DEVICE;
    case 'file':
      return s.mount(e).stat(e.h).filetype;
    case 'dir':
    case 'devdir':
    case 'netdir':
      return FileType.DIRECTORY;
    case 'dev':
      return FileType.CHARACTER_DEVICE;
    case 'sock':
      return FileType.SOCKET_STREAM;
  }
}
