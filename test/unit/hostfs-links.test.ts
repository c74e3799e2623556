import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as path from 'node:path';
import { Errno, FileType } from '../../src/guest/errno.js';
import { throwsErrno, hostSetup as setup, get } from '../fs-fixtures.js';

test('symlink, readlink and following links (relative, in subdirectories)', (t) => {
  const { dir, fs, root } = setup(t);
  fs.mkdir(root, 'd');
  nfs.writeFileSync(path.join(dir, 'd/f'), 'hello');
  fs.symlink('d/f', root, 'lf');
  fs.symlink('d', root, 'ld');
  fs.symlink('../d/f', root, 'd/up');
  assert.equal(nfs.readlinkSync(path.join(dir, 'lf')), 'd/f');
  assert.equal(fs.readlink(root, 'lf'), 'd/f');
  assert.equal(get(fs, root, 'lf'), 'hello');
  assert.equal(get(fs, root, 'ld/f'), 'hello');
  assert.equal(get(fs, root, 'ld/up'), 'hello');
  assert.equal(fs.lookup(root, 'ld/f', true), 'd/f', 'handles are canonical paths');
  assert.equal(fs.lookup(root, 'lf', false), 'lf');
  assert.equal(fs.statPath(root, 'lf', false).filetype, FileType.SYMBOLIC_LINK);
  assert.equal(fs.statPath(root, 'lf', true).filetype, FileType.REGULAR_FILE);
  throwsErrno(() => fs.readlink(root, 'd/f'), Errno.INVAL);
  throwsErrno(() => fs.symlink('x', root, 'lf'), Errno.EXIST);
  throwsErrno(() => fs.open(root, 'lf', { follow: false }), Errno.LOOP);
  fs.symlink('d/new', root, 'dangling');
  throwsErrno(() => fs.open(root, 'dangling', { create: true, excl: true }), Errno.EXIST);
  assert.equal(fs.open(root, 'dangling', { create: true }), 'd/new');
  assert.ok(nfs.existsSync(path.join(dir, 'd/new')));
});

test('symlink loops are LOOP', (t) => {
  const { fs, root } = setup(t);
  fs.symlink('b', root, 'a');
  fs.symlink('a', root, 'b');
  throwsErrno(() => fs.lookup(root, 'a', true), Errno.LOOP);
  throwsErrno(() => fs.lookup(root, 'a/x', false), Errno.LOOP);
  assert.equal(fs.statPath(root, 'a', false).filetype, FileType.SYMBOLIC_LINK);
});

test('hard links', (t) => {
  const { dir, fs, root } = setup(t);
  nfs.writeFileSync(path.join(dir, 'f'), 'shared');
  fs.mkdir(root, 'd');
  fs.link(root, 'f', root, 'd/g');
  assert.equal(fs.statPath(root, 'f', true).nlink, 2n);
  assert.equal(fs.statPath(root, 'd/g', true).ino, fs.statPath(root, 'f', true).ino);
  throwsErrno(() => fs.link(root, 'd', root, 'd2'), Errno.PERM);
  throwsErrno(() => fs.link(root, 'f', root, 'd/g'), Errno.EXIST);
  throwsErrno(() => fs.link(root, 'nope', root, 'x'), Errno.NOENT);
  fs.unlink(root, 'f');
  assert.equal(get(fs, root, 'd/g'), 'shared');
});
