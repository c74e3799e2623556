// An fd's WASI rights are kernel state: narrowed rights, requested rights and the
// SYNC flag survive a checkpoint (save, JSON, restore) and are still enforced in
// the restored VM. The syscalls are called as the program would call them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { example } from '../helpers.js';
import { Errno } from '../../src/guest/errno.js';
import { R } from '../../src/guest/wasi/rights.js';
import type { FrameSpace } from '../../src/memory/frames.js';
import type { Process } from '../../src/guest/process.js';

const { prepare } = await import('../../src/wasm/prepare.js');
const { Kernel } = await import('../../src/guest/kernel.js');
const { wasiImports } = await import('../../src/guest/wasi/index.js');

type Call = (...a: Array<number | bigint>) => number;
const quiet = (): void => {};
const QUIET = { log: quiet, stdout: quiet, stderr: quiet };
/** Scratch addresses in the (never started) program's memory. */
const PATH = 0x100,
  OUT = 0x200,
  IOV = 0x300,
  BUF = 0x400;

function sys(k: InstanceType<typeof Kernel>, p: Process): Record<string, Call> {
  return wasiImports(k, p).wasi_snapshot_preview1 as Record<string, Call>;
}

function fdstat(p: Process, call: Record<string, Call>, fd: number) {
  assert.equal(call.fd_fdstat_get(fd, OUT), 0);
  const v = p.view();
  return {
    flags: v.getUint16(OUT + 2, true),
    base: Number(v.getBigUint64(OUT + 8, true)),
    inheriting: Number(v.getBigUint64(OUT + 16, true)),
  };
}

function iov(p: Process, len: number): void {
  p.view().setUint32(IOV, BUF, true);
  p.view().setUint32(IOV + 4, len, true);
}

const allPages = (s: FrameSpace): Map<number, Uint8Array> => {
  const m = new Map<number, Uint8Array>();
  for (let i = 0; i < s.pageCount(); i++) m.set(i, s.page(i).slice());
  return m;
};

void test('rights and fd flags survive a checkpoint and are enforced after it', async () => {
  const mod = await prepare(fs.readFileSync(example('counter')));
  const k = new Kernel({ vmId: 'rights', ...QUIET });
  const p = k.spawn(mod, ['counter'], []);
  const call = sys(k, p);
  p.bytes().set(Buffer.from('f'), PATH);
  const asked = R.FD_READ | R.FD_WRITE | R.FD_SEEK | R.FD_FDSTAT_SET_FLAGS;
  // fd 3 is the RAM disk at / (no --dir folders). SYNC = 16.
  assert.equal(call.path_open(3, 0, PATH, 1, 1, BigInt(asked), 0n, 16, OUT), 0);
  const fd = p.view().getUint32(OUT, true);
  assert.deepEqual(fdstat(p, call, fd), { flags: 16, base: asked, inheriting: 0 });
  iov(p, 3);
  p.bytes().set(Buffer.from('abc'), BUF);
  assert.equal(call.fd_write(fd, IOV, 1, OUT), 0);
  assert.equal(call.fd_fdstat_set_rights(fd, BigInt(asked & ~R.FD_WRITE), 0n), 0);
  assert.equal(call.fd_write(fd, IOV, 1, OUT), Errno.BADF, 'narrowed: no more writes');
  assert.equal(call.fd_fdstat_set_rights(fd, BigInt(asked), 0n), Errno.NOTCAPABLE);

  const state = JSON.parse(JSON.stringify(k.save())) as ReturnType<typeof k.save>;
  const spaces = new Map(k.frameSpaces().map((s) => [s.slot, allPages(s)]));
  k.close();
  const k2 = await Kernel.restore(
    state,
    (slot) => spaces.get(slot) ?? new Map<number, Uint8Array>(),
    () => Promise.resolve(mod),
    { vmId: 'rights', ...QUIET },
  );
  try {
    const p2 = k2.processes.get(p.pid)!;
    const call2 = sys(k2, p2);
    assert.deepEqual(fdstat(p2, call2, fd), {
      flags: 16,
      base: asked & ~R.FD_WRITE,
      inheriting: 0,
    });
    iov(p2, 3);
    assert.equal(call2.fd_write(fd, IOV, 1, OUT), Errno.BADF, 'still read-only after restore');
    assert.equal(call2.fd_fdstat_set_rights(fd, BigInt(asked), 0n), Errno.NOTCAPABLE);
    p2.view().setBigUint64(OUT, 0n, true);
    assert.equal(call2.fd_seek(fd, 0n, 0, OUT), 0);
    assert.equal(call2.fd_read(fd, IOV, 1, OUT), 0);
    assert.equal(p2.view().getUint32(OUT, true), 3);
    assert.equal(Buffer.from(p2.bytes().subarray(BUF, BUF + 3)).toString(), 'abc');
    // The preopen's own rights: a directory may not be read as a file.
    assert.equal(fdstat(p2, call2, 3).base & R.FD_READ, 0);
  } finally {
    k2.close();
  }
});
