import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Errno } from '../../src/guest/errno.js';
import { HostFs } from '../../src/guest/hostfs.js';
import { throwsErrno } from '../fs-fixtures.js';

/** A mount at <tmp>/mnt next to a secret at <tmp>/secret that it must never reach. */
function setup(t: { after(fn: () => void): void }) {
  const top = nfs.mkdtempSync(path.join(os.tmpdir(), 'roam-hostfs-'));
  const dir = path.join(top, 'mnt');
  nfs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  nfs.writeFileSync(path.join(top, 'secret'), 'top secret');
  nfs.writeFileSync(path.join(dir, 'sub/ok'), 'ok');
  const fs = new HostFs(dir);
  t.after(() => {
    fs.closeAll();
    nfs.rmSync(top, { recursive: true, force: true });
  });
  return { top, dir, fs, root: fs.root() };
}

test('.. above the directory handle and absolute paths are NOTCAPABLE', (t) => {
  const { fs, root } = setup(t);
  throwsErrno(() => fs.lookup(root, '..', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(root, '../secret', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(root, 'sub/../../secret', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.open(fs.lookup(root, 'sub', true), '../../secret', {}), Errno.NOTCAPABLE);
  throwsErrno(() => fs.open(root, '../new', { create: true }), Errno.NOTCAPABLE);
  throwsErrno(() => fs.mkdir(root, '../newdir'), Errno.NOTCAPABLE);
  throwsErrno(() => fs.unlink(root, '../secret'), Errno.NOTCAPABLE);
  throwsErrno(() => fs.rename(root, 'sub/ok', root, '../stolen'), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(root, '/etc/passwd', true), Errno.NOTCAPABLE);
  // Confined at the directory walked from, as in WASI, not at the mount.
  const sub = fs.lookup(root, 'sub', true);
  throwsErrno(() => fs.lookup(sub, '../sub/ok', true), Errno.NOTCAPABLE);
  assert.equal(fs.lookup(root, 'sub/../sub/ok', true), 'sub/ok');
});

test('symlinks pointing outside (relative or absolute) are NOTCAPABLE; inside ones work', (t) => {
  const { top, dir, fs, root } = setup(t);
  nfs.symlinkSync('../secret', path.join(dir, 'rel-out'));
  nfs.symlinkSync(path.join(top, 'secret'), path.join(dir, 'abs-out'));
  nfs.symlinkSync('..', path.join(dir, 'parent'));
  nfs.symlinkSync(path.join(dir, 'sub/ok'), path.join(dir, 'abs-in'));
  nfs.symlinkSync('/', path.join(dir, 'sub/slash'));
  for (const p of ['rel-out', 'abs-out', 'parent/secret', 'sub/slash/etc/passwd']) {
    throwsErrno(() => fs.lookup(root, p, true), Errno.NOTCAPABLE);
    throwsErrno(() => fs.open(root, p, {}), Errno.NOTCAPABLE);
  }
  throwsErrno(() => fs.open(root, 'rel-out', { create: true }), Errno.NOTCAPABLE);
  throwsErrno(() => fs.mkdir(root, 'parent/x'), Errno.NOTCAPABLE);
  // The links themselves can be inspected and removed, just not followed.
  assert.equal(fs.readlink(root, 'rel-out'), '../secret');
  fs.unlink(root, 'rel-out');
  assert.equal(nfs.readFileSync(path.join(top, 'secret'), 'utf8'), 'top secret');
  // An absolute target is refused even when it names a place inside the mount.
  throwsErrno(() => fs.lookup(root, 'abs-in', true), Errno.NOTCAPABLE);
  assert.equal(fs.readlink(root, 'abs-in'), path.join(dir, 'sub/ok'));
});

test('a handle cannot be turned into an escape by swapping a directory for a symlink', (t) => {
  const { top, dir, fs, root } = setup(t);
  nfs.mkdirSync(path.join(top, 'outside'));
  nfs.writeFileSync(path.join(top, 'outside/ok'), 'leaked');
  const h = fs.lookup(root, 'sub/ok', true);
  // Done behind the guest's back: sub becomes a link to a directory outside.
  nfs.renameSync(path.join(dir, 'sub'), path.join(dir, 'sub.old'));
  nfs.symlinkSync(path.join(top, 'outside'), path.join(dir, 'sub'));
  throwsErrno(() => fs.read(h, 0, new Uint8Array(10)), Errno.NOTCAPABLE);
  throwsErrno(() => fs.stat(h), Errno.NOTCAPABLE);
  // Forged handles (say, from a tampered checkpoint) are refused too.
  for (const bad of ['../secret', '/etc/passwd', 'sub/../../secret', '']) {
    throwsErrno(() => fs.read(bad, 0, new Uint8Array(1)), Errno.NOTCAPABLE);
  }
});

test('the mount root may itself be reached through a symlink', (t) => {
  const { top, dir } = setup(t);
  const alias = path.join(top, 'alias');
  nfs.symlinkSync(dir, alias);
  const fs = new HostFs(alias);
  t.after(() => fs.closeAll());
  nfs.symlinkSync('sub/ok', path.join(dir, 'via-alias'));
  assert.equal(fs.lookup(fs.root(), 'via-alias', true), 'sub/ok');
  throwsErrno(() => fs.lookup(fs.root(), '../secret', true), Errno.NOTCAPABLE);
});
