// The VM's device names, in one place: the /dev directory (null, zero, urandom,
// and the thesis' /dev/checkpoint) and /net (open /net/tcp/HOST:PORT to connect).
// The kernel preopens both; the WASI layer opens, reads, writes and lists them here.
import { randomFillSync } from 'node:crypto';
import { Errno, FileType, WasiError } from '../errno.js';
import type { Fd, FdTable } from '../fdtable.js';
import type { DirEntry } from '../fs.js';
import type { Kernel } from '../kernel.js';

export const DEV_DIR = '/dev';
export const NET_DIR = '/net';
/** Where the RAM disk is preopened when a --dir folder takes `/`. */
export const RAMDISK_MOVED = '/ram';
/** The devices under /dev, sorted (the order readdir lists them in). */
export const DEVICES = ['blink', 'checkpoint', 'null', 'urandom', 'zero'] as const;
export type DevName = (typeof DEVICES)[number];
/** Under /net: one folder per protocol; its entries are addresses. */
const NET_PROTOCOLS = ['tcp'] as const;

/** errno a pending read of /dev/checkpoint returns in the resumed copy: "we have arrived". */
export const ARRIVED_ERRNO = Errno.CANCELED;

const isDevice = (name: string): name is DevName => (DEVICES as readonly string[]).includes(name);
const strip = (path: string): string => path.replace(/^\.\//, '');

/** The preopens every process gets besides its file systems. */
export const devicePreopens = (): Fd[] => [
  { t: 'devdir', preopen: DEV_DIR },
  { t: 'netdir', preopen: NET_DIR, sub: '' },
];

/** A restored VM: a program blocked reading /dev/checkpoint learns that it has arrived. */
export function markArrived(table: FdTable): void {
  for (const fd of table.entries.values())
    if (fd.t === 'dev' && fd.name === 'checkpoint') fd.arrived = true;
}

/** What `path` names inside /dev: the directory itself or one device. */
export function devLookup(path: string): Fd {
  const name = strip(path);
  if (name === '' || name === '.') return { t: 'devdir', preopen: DEV_DIR };
  if (!isDevice(name)) throw new WasiError(Errno.NOENT);
  return { t: 'dev', name };
}

/** The filetype of a name inside /dev (NOENT when there is no such device). */
export function devFiletype(path: string): number {
  return devLookup(path).t === 'devdir' ? FileType.DIRECTORY : FileType.CHARACTER_DEVICE;
}

/** What `path` names under a /net directory: a sub-directory, or a TCP address to connect to. */
export function netLookup(
  d: Extract<Fd, { t: 'netdir' }>,
  path: string,
): { dir: string } | { tcp: string } {
  const full = (d.sub ? `${d.sub}/` : '') + strip(path);
  if (full === '' || full === '.') return { dir: '' };
  if ((NET_PROTOCOLS as readonly string[]).includes(full)) return { dir: full };
  const m = /^tcp\/(.+)$/.exec(full);
  if (!m) throw new WasiError(Errno.NOENT);
  return { tcp: m[1] };
}

const entries = (names: string[], filetype: (i: number) => number): DirEntry[] =>
  names.map((name, i) => ({ name, ino: BigInt(i + 1), filetype: filetype(i) }));

export function devdirEntries(): DirEntry[] {
  return entries(['.', '..', ...DEVICES], (i) =>
    i < 2 ? FileType.DIRECTORY : FileType.CHARACTER_DEVICE,
  );
}
export function netdirEntries(sub: string): DirEntry[] {
  return entries(['.', '..', ...(sub ? [] : NET_PROTOCOLS)], () => FileType.DIRECTORY);
}

type Dev = Extract<Fd, { t: 'dev' }>;

/** Read a device; null = would block (the checkpoint stream is not ready). */
export function devRead(k: Kernel, e: Dev, dst: Uint8Array): number | null {
  switch (e.name) {
    case 'null':
      return 0;
    case 'blink':
      return k.blink.read(dst);
    case 'zero':
      dst.fill(0);
      return dst.length;
    case 'urandom':
      randomFillSync(dst);
      return dst.length;
    case 'checkpoint': {
      if (e.arrived) throw new WasiError(ARRIVED_ERRNO);
      if (!k.device) throw new WasiError(Errno.NODEV, 'this VM has no checkpoint machinery');
      if (e.session === undefined) {
        e.session = k.nextSession++;
        k.device.startCheckpoint(e.session);
      }
      const chunk = k.device.take(e.session, dst.length);
      if (chunk === null) return null;
      dst.set(chunk);
      return chunk.length;
    }
  }
}

const td = new TextDecoder();

/** Write a device: /dev/checkpoint takes a command, the others swallow everything. */
export function devWrite(k: Kernel, e: Dev, src: Uint8Array): number {
  if (e.name === 'checkpoint') {
    // "migrate HOST:PORT" / "fork HOST:PORT", then read() for the outcome.
    if (!k.device || e.session !== undefined) throw new WasiError(Errno.BADF);
    const session = k.nextSession++;
    if (!k.device.command(session, td.decode(src))) throw new WasiError(Errno.INVAL);
    e.session = session;
  }
  if (e.name === 'blink') return k.blink.write(src, k.log);
  return src.length;
}
