// WASI preview1 rights: what each descriptor may do. Every fd carries a base set
// (checked by the calls made on it) and an inheriting set (the most a descriptor
// opened through it may get). They live in the fd table, so they are part of every
// checkpoint, and they only ever shrink (fd_fdstat_set_rights, path_open).
import { Errno, WasiError } from '../errno.js';
import type { Fd } from '../fdtable.js';

export const R = {
  FD_DATASYNC: 1 << 0,
  FD_READ: 1 << 1,
  FD_SEEK: 1 << 2,
  FD_FDSTAT_SET_FLAGS: 1 << 3,
  FD_SYNC: 1 << 4,
  FD_TELL: 1 << 5,
  FD_WRITE: 1 << 6,
  FD_ADVISE: 1 << 7,
  FD_ALLOCATE: 1 << 8,
  PATH_CREATE_DIRECTORY: 1 << 9,
  PATH_CREATE_FILE: 1 << 10,
  PATH_LINK_SOURCE: 1 << 11,
  PATH_LINK_TARGET: 1 << 12,
  PATH_OPEN: 1 << 13,
  FD_READDIR: 1 << 14,
  PATH_READLINK: 1 << 15,
  PATH_RENAME_SOURCE: 1 << 16,
  PATH_RENAME_TARGET: 1 << 17,
  PATH_FILESTAT_GET: 1 << 18,
  PATH_FILESTAT_SET_SIZE: 1 << 19,
  PATH_FILESTAT_SET_TIMES: 1 << 20,
  FD_FILESTAT_GET: 1 << 21,
  FD_FILESTAT_SET_SIZE: 1 << 22,
  FD_FILESTAT_SET_TIMES: 1 << 23,
  PATH_SYMLINK: 1 << 24,
  PATH_REMOVE_DIRECTORY: 1 << 25,
  PATH_UNLINK_FILE: 1 << 26,
  POLL_FD_READWRITE: 1 << 27,
  SOCK_SHUTDOWN: 1 << 28,
  SOCK_ACCEPT: 1 << 29,
} as const;

export const ALL_RIGHTS = (1 << 30) - 1;

/** What a regular file can do. */
export const FILE_RIGHTS =
  R.FD_DATASYNC |
  R.FD_READ |
  R.FD_SEEK |
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_TELL |
  R.FD_WRITE |
  R.FD_ADVISE |
  R.FD_ALLOCATE |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_SIZE |
  R.FD_FILESTAT_SET_TIMES |
  R.POLL_FD_READWRITE;

/** What a directory can do (it is never read, written or truncated as a file). */
export const DIR_RIGHTS =
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_ADVISE |
  R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET |
  R.PATH_OPEN |
  R.FD_READDIR |
  R.PATH_READLINK |
  R.PATH_RENAME_SOURCE |
  R.PATH_RENAME_TARGET |
  R.PATH_FILESTAT_GET |
  R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY |
  R.PATH_UNLINK_FILE |
  R.POLL_FD_READWRITE;

/** Terminals, pipes and devices: a stream without a position. */
export const STREAM_RIGHTS =
  R.FD_READ | R.FD_WRITE | R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE;

export const SOCK_RIGHTS = STREAM_RIGHTS | R.SOCK_SHUTDOWN | R.SOCK_ACCEPT;

/** The most a descriptor of this kind can do. */
export function kindRights(e: Fd): number {
  switch (e.t) {
    case 'file':
      return FILE_RIGHTS;
    case 'dir':
    case 'devdir':
    case 'netdir':
      return DIR_RIGHTS;
    case 'sock':
      return SOCK_RIGHTS;
    default:
      return STREAM_RIGHTS;
  }
}

/** An fd's rights; an entry without them (a checkpoint from before rights) may do all its kind can. */
export function rightsOf(e: Fd): { base: number; inheriting: number } {
  const dir = e.t === 'dir' || e.t === 'devdir' || e.t === 'netdir';
  return {
    base: e.base ?? kindRights(e),
    inheriting: e.inheriting ?? (dir ? ALL_RIGHTS : 0),
  };
}

/** Refuse the call unless `e` holds every right in `need`. */
export function need(e: Fd, need: number, errno: number = Errno.NOTCAPABLE): void {
  if ((rightsOf(e).base & need) !== need) throw new WasiError(errno, 'missing rights');
}

/** The rights a descriptor opened through `parent` gets: what was asked for, at most what the parent passes on. */
export function childRights(
  parent: Fd,
  child: Fd,
  base: number,
  inheriting: number,
): { base: number; inheriting: number } {
  const from = rightsOf(parent).inheriting;
  return { base: base & from & kindRights(child), inheriting: inheriting & from };
}

/** fd_fdstat_set_rights: rights can be dropped, never gained. */
export function narrow(e: Fd, base: number, inheriting: number): void {
  const cur = rightsOf(e);
  if ((base & ~cur.base) !== 0 || (inheriting & ~cur.inheriting) !== 0)
    throw new WasiError(Errno.NOTCAPABLE, 'rights can only be dropped');
  e.base = base;
  e.inheriting = inheriting;
}
