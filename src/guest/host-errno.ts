// Host file-system calls for host folders (`--dir`): Node's errors as WASI errnos,
// and Node's file types as WASI's.
import type * as fs from 'node:fs';
import { Errno, FileType, WasiError } from './errno.js';

const HOST_ERRNO: Record<string, number> = {
  ENOENT: Errno.NOENT,
  EEXIST: Errno.EXIST,
  ENOTDIR: Errno.NOTDIR,
  EISDIR: Errno.ISDIR,
  ENOTEMPTY: Errno.NOTEMPTY,
  EACCES: Errno.ACCES,
  EPERM: Errno.PERM,
  ELOOP: Errno.LOOP,
  EINVAL: Errno.INVAL,
  ENOSPC: Errno.NOSPC,
  EXDEV: Errno.XDEV,
  EBADF: Errno.BADF,
  EBUSY: Errno.BUSY,
  EMFILE: Errno.MFILE,
  ENFILE: Errno.NFILE,
  ENAMETOOLONG: Errno.NAMETOOLONG,
  EROFS: Errno.ROFS,
  EFBIG: Errno.FBIG,
  EIO: Errno.IO,
  EMLINK: Errno.MLINK,
  ENOTSUP: Errno.NOTSUP,
  EOPNOTSUPP: Errno.NOTSUP,
  ETXTBSY: Errno.TXTBSY,
  EDQUOT: Errno.DQUOT,
  ENOMEM: Errno.NOMEM,
  EAGAIN: Errno.AGAIN,
  ENXIO: Errno.NXIO,
  EOVERFLOW: Errno.OVERFLOW,
  ESPIPE: Errno.SPIPE,
  EFAULT: Errno.FAULT,
  ENOSYS: Errno.NOSYS,
  ESTALE: Errno.STALE,
  EINTR: Errno.INTR,
  ENODEV: Errno.NODEV,
  EILSEQ: Errno.ILSEQ,
};

/** The WASI errno for a Node fs error (IO for anything unexpected). */
export function hostErrno(e: unknown): number {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return (code !== undefined && HOST_ERRNO[code]) || Errno.IO;
}

/** Run a host call, turning Node errors into WasiError. */
export function host<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof WasiError) throw e;
    throw new WasiError(hostErrno(e), (e as Error).message);
  }
}

export function fileTypeOf(s: fs.Stats | fs.BigIntStats | fs.Dirent): number {
  if (s.isDirectory()) return FileType.DIRECTORY;
  if (s.isFile()) return FileType.REGULAR_FILE;
  if (s.isSymbolicLink()) return FileType.SYMBOLIC_LINK;
  if (s.isBlockDevice()) return FileType.BLOCK_DEVICE;
  if (s.isCharacterDevice()) return FileType.CHARACTER_DEVICE;
  if (s.isSocket()) return FileType.SOCKET_STREAM;
  return FileType.UNKNOWN;
}
