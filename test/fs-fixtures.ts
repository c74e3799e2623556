// Shared by the file-system tests: a fresh RAM disk or host folder, and errno checks.
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WasiError } from '../src/guest/errno.js';
import type { FsBackend, Handle } from '../src/guest/fs.js';
import { HostFs } from '../src/guest/hostfs.js';
import { PagePool } from '../src/guest/page-pool.js';
import { RamDisk } from '../src/guest/ramdisk.js';

export function throwsErrno(fn: () => unknown, errno: number): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof WasiError) {
      assert.equal(e.errno, errno, `errno ${e.errno} (${e.message}), wanted ${errno}`);
      return;
    }
    throw e;
  }
  assert.fail(`expected WASI errno ${errno}`);
}

/** A RAM disk on a fresh pool, with a clock that ticks once per call. */
export function ramSetup() {
  let t = 0n;
  const pool = new PagePool();
  const fs = new RamDisk(pool, () => ++t);
  return { pool, fs, root: fs.root() };
}

/** A host-folder backend on a fresh temp dir, removed after the test. */
export function hostSetup(t: { after(fn: () => void): void }) {
  const dir = nfs.mkdtempSync(path.join(os.tmpdir(), 'roam-hostfs-'));
  const fs = new HostFs(dir);
  t.after(() => {
    fs.closeAll();
    nfs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, fs, root: fs.root() };
}

export const names = (fs: FsBackend, h: Handle) => fs.readdir(h).map((e) => e.name);

export function put(fs: FsBackend, dir: Handle, p: string, text: string): void {
  const h = fs.open(dir, p, { create: true, trunc: true });
  fs.write(h, 0, new TextEncoder().encode(text));
  fs.close(h);
}

export function get(fs: FsBackend, dir: Handle, p: string): string {
  const h = fs.lookup(dir, p, true);
  const b = new Uint8Array(fs.size(h));
  fs.read(h, 0, b);
  return new TextDecoder().decode(b);
}
