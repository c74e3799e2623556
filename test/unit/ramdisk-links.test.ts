import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno, FileType } from '../../src/guest/errno.js';
import { throwsErrno, ramSetup as setup, put, get } from '../fs-fixtures.js';

test('symlink and readlink; following final and intermediate links', () => {
  const { fs, root } = setup();
  fs.mkdir(root, 'd');
  put(fs, root, 'd/f', 'hello');
  fs.symlink('d/f', root, 'lf');
  fs.symlink('d', root, 'ld');
  fs.symlink('../d/f', root, 'd/up');
  assert.equal(fs.readlink(root, 'lf'), 'd/f');
  assert.equal(get(fs, root, 'lf'), 'hello');
  assert.equal(get(fs, root, 'ld/f'), 'hello');
  assert.equal(
    get(fs, root, 'ld/up'),
    'hello',
    "relative targets resolve from the link's directory",
  );
  assert.equal(fs.statPath(root, 'lf', false).filetype, FileType.SYMBOLIC_LINK);
  assert.equal(fs.statPath(root, 'lf', false).size, 3n);
  assert.equal(fs.statPath(root, 'lf', true).filetype, FileType.REGULAR_FILE);
  assert.equal(fs.lookup(root, 'ld/', false), fs.lookup(root, 'd', true), 'trailing slash follows');
  throwsErrno(() => fs.readlink(root, 'd/f'), Errno.INVAL);
  throwsErrno(() => fs.symlink('x', root, 'lf'), Errno.EXIST);
  throwsErrno(() => fs.symlink('', root, 'empty'), Errno.NOENT);
  throwsErrno(() => fs.open(root, 'lf', { follow: false }), Errno.LOOP);
  // Creating through a dangling link creates its target; O_EXCL refuses the link.
  fs.symlink('d/new', root, 'dangling');
  throwsErrno(() => fs.lookup(root, 'dangling', true), Errno.NOENT);
  throwsErrno(() => fs.open(root, 'dangling', { create: true, excl: true }), Errno.EXIST);
  const h = fs.open(root, 'dangling', { create: true });
  assert.equal(fs.lookup(root, 'd/new', true), h);
});

test('symlink loops are LOOP; a long chain under the limit works', () => {
  const { fs, root } = setup();
  fs.symlink('b', root, 'a');
  fs.symlink('a', root, 'b');
  fs.symlink('self/x', root, 'self');
  throwsErrno(() => fs.lookup(root, 'a', true), Errno.LOOP);
  throwsErrno(() => fs.lookup(root, 'self', true), Errno.LOOP);
  throwsErrno(() => fs.open(root, 'a', { create: true }), Errno.LOOP);
  assert.equal(fs.statPath(root, 'a', false).filetype, FileType.SYMBOLIC_LINK);
  put(fs, root, 'end', 'E');
  fs.symlink('end', root, 'c0');
  for (let i = 1; i <= 32; i++) fs.symlink(`c${i - 1}`, root, `c${i}`);
  assert.equal(get(fs, root, 'c31'), 'E');
  throwsErrno(() => fs.lookup(root, 'c32', true), Errno.LOOP);
});

test('NOTCAPABLE: absolute paths, .. above the directory, links escaping or absolute', () => {
  const { fs, root } = setup();
  fs.mkdir(root, 'd');
  const d = fs.lookup(root, 'd', true);
  throwsErrno(() => fs.lookup(root, '/d', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(root, '..', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(root, 'd/../..', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(d, '../../etc', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.open(d, '../../x', { create: true }), Errno.NOTCAPABLE);
  throwsErrno(() => fs.mkdir(root, '../x'), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(d, '..', true), Errno.NOTCAPABLE);
  assert.equal(fs.lookup(root, 'd/..', true), root, '.. below the directory walked from is fine');
  fs.symlink('../..', root, 'd/esc');
  fs.symlink('/etc/passwd', root, 'abs');
  throwsErrno(() => fs.lookup(root, 'd/esc', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(root, 'd/esc/x', true), Errno.NOTCAPABLE);
  throwsErrno(() => fs.lookup(root, 'abs', true), Errno.NOTCAPABLE);
  assert.equal(fs.readlink(root, 'abs'), '/etc/passwd');
  throwsErrno(() => fs.lookup(root, '', true), Errno.NOENT);
});

test('hard links share an inode, count nlink, and keep data until the last name goes', () => {
  const { fs, root, pool } = setup();
  fs.mkdir(root, 'd');
  put(fs, root, 'f', 'shared');
  fs.link(root, 'f', root, 'd/g');
  const f = fs.lookup(root, 'f', true);
  assert.equal(fs.lookup(root, 'd/g', true), f);
  assert.equal(fs.stat(f).nlink, 2n);
  const h = fs.open(root, 'd/g', {});
  fs.write(h, 0, new TextEncoder().encode('SH'));
  fs.close(h);
  assert.equal(get(fs, root, 'f'), 'SHared');
  throwsErrno(() => fs.link(root, 'd', root, 'd2'), Errno.PERM);
  throwsErrno(() => fs.link(root, 'f', root, 'd/g'), Errno.EXIST);
  throwsErrno(() => fs.link(root, 'nope', root, 'x'), Errno.NOENT);
  // A link to a symlink links the symlink itself.
  fs.symlink('f', root, 'sl');
  fs.link(root, 'sl', root, 'sl2');
  assert.equal(fs.readlink(root, 'sl2'), 'f');
  fs.unlink(root, 'f');
  assert.equal(fs.stat(f).nlink, 1n);
  assert.equal(get(fs, root, 'd/g'), 'SHared');
  assert.equal(pool.inUse(), 1);
  fs.unlink(root, 'd/g');
  assert.equal(pool.inUse(), 0);
  throwsErrno(() => fs.stat(f), Errno.BADF);
});
