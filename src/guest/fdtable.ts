// A process' file descriptors. Entries are plain data (mount index + handle,
// socket id, device name) so that the table is part of the kernel's serialisable state.
import type { Handle } from './fs.js';
import type { DevName } from './wasi/devices.js';

/**
 * Rights (WASI preview1 bitmasks, src/guest/wasi/rights.ts): `base` is what the
 * fd may do, `inheriting` the most an fd opened through it may get. Absent on
 * entries from checkpoints taken before rights: everything the fd's kind allows.
 */
export interface FdRights {
  base?: number;
  inheriting?: number;
}

export type Fd = (
  | { t: 'stdin' }
  | { t: 'stdout' }
  | { t: 'stderr' }
  | {
      t: 'file';
      mount: number;
      h: Handle;
      pos: number;
      append: boolean;
      nonblock?: boolean;
      /** FDFLAGS DSYNC | RSYNC | SYNC as opened or set: every write is synchronous anyway. */
      sync?: number;
    }
  | { t: 'dir'; mount: number; h: Handle; preopen?: string }
  | { t: 'devdir'; preopen?: string }
  | { t: 'netdir'; preopen?: string; sub: string }
  | {
      t: 'dev';
      name: DevName;
      session?: number;
      arrived?: boolean;
    }
  | { t: 'sock'; sock: number; nonblock?: boolean }
) &
  FdRights;

export class FdTable {
  constructor(readonly entries: Map<number, Fd> = new Map()) {}

  get(fd: number): Fd | undefined {
    return this.entries.get(fd);
  }
  /** The lowest free descriptor, like POSIX. */
  add(entry: Fd): number {
    let fd = 0;
    while (this.entries.has(fd)) fd++;
    this.entries.set(fd, entry);
    return fd;
  }
  delete(fd: number): void {
    this.entries.delete(fd);
  }
  toJSON(): Array<[number, Fd]> {
    return [...this.entries];
  }
  static from(json: Array<[number, Fd]>): FdTable {
    return new FdTable(new Map(json));
  }
}
