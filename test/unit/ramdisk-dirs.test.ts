import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno, FileType } from '../../src/guest/errno.js';
import { throwsErrno, ramSetup as setup, put, get, names } from '../fs-fixtures.js';

test('readdir lists . and .. first, then names sorted, with inodes and types', () => {
  const { fs, root } = setup();
  fs.mkdir(root, 'sub');
  put(fs, root, 'b', 'x');
  put(fs, root, 'a', 'y');
  fs.symlink('a', root, 'l');
  const ents = fs.readdir(root);
  assert.deepEqual(
    ents.map((e) => e.name),
    ['.', '..', 'a', 'b', 'l', 'sub'],
  );
  assert.deepEqual(
    ents.map((e) => e.filetype),
    [
      FileType.DIRECTORY,
      FileType.DIRECTORY,
      FileType.REGULAR_FILE,
      FileType.REGULAR_FILE,
      FileType.SYMBOLIC_LINK,
      FileType.DIRECTORY,
    ],
  );
  assert.equal(ents[0].ino, BigInt(root as number));
  assert.equal(ents[1].ino, BigInt(root as number), 'the root is its own parent');
  const sub = fs.lookup(root, 'sub', true);
  assert.deepEqual(
    fs.readdir(sub).map((e) => [e.name, e.ino]),
    [
      ['.', BigInt(sub as number)],
      ['..', BigInt(root as number)],
    ],
  );
  throwsErrno(() => fs.readdir(fs.lookup(root, 'a', true)), Errno.NOTDIR);
});

test('mkdir: nested, EXIST, NOENT parent, NOTDIR parent, nlink counts subdirectories', () => {
  const { fs, root } = setup();
  fs.mkdir(root, 'a');
  fs.mkdir(root, 'a/b/');
  fs.mkdir(root, 'a/b/c');
  throwsErrno(() => fs.mkdir(root, 'a'), Errno.EXIST);
  throwsErrno(() => fs.mkdir(root, 'a/b/..'), Errno.EXIST);
  throwsErrno(() => fs.mkdir(root, 'x/y'), Errno.NOENT);
  put(fs, root, 'f', '');
  throwsErrno(() => fs.mkdir(root, 'f'), Errno.EXIST);
  throwsErrno(() => fs.mkdir(root, 'f/g'), Errno.NOTDIR);
  assert.equal(fs.statPath(root, '.', true).nlink, 3n);
  assert.equal(fs.statPath(root, 'a', true).nlink, 3n);
  assert.equal(fs.statPath(root, 'a/b/c', true).nlink, 2n);
  const b = fs.lookup(root, 'a/b', true);
  assert.equal(fs.lookup(b, 'c/..', true), b);
  throwsErrno(() => fs.lookup(b, 'c/../..', true), Errno.NOTCAPABLE);
  assert.equal(fs.lookup(root, 'a/b/c/../..', true), fs.lookup(root, 'a', true));
  assert.equal(fs.lookup(b, './c/.', true), fs.lookup(root, 'a/b/c', true));
  assert.equal(fs.lookup(root, 'a//b', true), b);
});

test('rmdir: NOTEMPTY, NOTDIR, INVAL for ., and removed directories reject new entries', () => {
  const { fs, root } = setup();
  fs.mkdir(root, 'd');
  fs.mkdir(root, 'd/e');
  put(fs, root, 'f', 'x');
  throwsErrno(() => fs.rmdir(root, 'd'), Errno.NOTEMPTY);
  throwsErrno(() => fs.rmdir(root, 'f'), Errno.NOTDIR);
  throwsErrno(() => fs.rmdir(root, 'nope'), Errno.NOENT);
  throwsErrno(() => fs.rmdir(root, '.'), Errno.INVAL);
  throwsErrno(() => fs.rmdir(root, 'd/e/..'), Errno.NOTEMPTY);
  const e = fs.open(root, 'd/e', { directory: true });
  fs.rmdir(root, 'd/e/');
  assert.deepEqual(names(fs, fs.lookup(root, 'd', true)), ['.', '..']);
  assert.equal(fs.statPath(root, 'd', true).nlink, 2n);
  // The removed directory stays usable as an fd but cannot gain entries.
  assert.equal(fs.stat(e).nlink, 0n);
  throwsErrno(() => fs.open(e, 'new', { create: true }), Errno.NOENT);
  throwsErrno(() => fs.mkdir(e, 'new'), Errno.NOENT);
  fs.close(e);
  fs.rmdir(root, 'd');
  assert.deepEqual(names(fs, root), ['.', '..', 'f']);
  // rmdir through a symlink with a trailing slash must not remove the target.
  fs.mkdir(root, 't');
  fs.symlink('t', root, 'lt');
  throwsErrno(() => fs.rmdir(root, 'lt/'), Errno.NOTDIR);
  throwsErrno(() => fs.rmdir(root, 'lt'), Errno.NOTDIR);
  assert.equal(fs.statPath(root, 't', false).filetype, FileType.DIRECTORY);
});

test('unlink: files and symlinks; ISDIR for directories; an open file lives until close', () => {
  const { fs, root, pool } = setup();
  fs.mkdir(root, 'd');
  throwsErrno(() => fs.unlink(root, 'd'), Errno.ISDIR);
  throwsErrno(() => fs.unlink(root, 'nope'), Errno.NOENT);
  put(fs, root, 'f', 'x'.repeat(10000));
  throwsErrno(() => fs.unlink(root, 'f/'), Errno.NOTDIR);
  fs.symlink('f', root, 'l');
  fs.unlink(root, 'l');
  assert.equal(get(fs, root, 'f').length, 10000, 'unlinking a symlink keeps its target');
  const h = fs.open(root, 'f', {});
  const inodes = fs.inodeCount();
  fs.unlink(root, 'f');
  throwsErrno(() => fs.lookup(root, 'f', true), Errno.NOENT);
  assert.equal(fs.stat(h).nlink, 0n);
  assert.equal(fs.size(h), 10000);
  assert.equal(pool.inUse(), 3);
  fs.close(h);
  assert.equal(pool.inUse(), 0);
  assert.equal(fs.inodeCount(), inodes - 1);
});

test('rename: POSIX edge cases', () => {
  const { fs, root } = setup();
  put(fs, root, 'a', 'A');
  put(fs, root, 'b', 'B');
  // Replace an existing file.
  const aIno = fs.lookup(root, 'a', true);
  fs.rename(root, 'a', root, 'b');
  assert.equal(get(fs, root, 'b'), 'A');
  assert.equal(fs.lookup(root, 'b', true), aIno);
  throwsErrno(() => fs.lookup(root, 'a', true), Errno.NOENT);
  // Same file: nothing happens.
  fs.rename(root, 'b', root, 'b');
  assert.equal(get(fs, root, 'b'), 'A');
  fs.link(root, 'b', root, 'b2');
  fs.rename(root, 'b', root, 'b2');
  assert.deepEqual(names(fs, root), ['.', '..', 'b', 'b2']);
  fs.unlink(root, 'b2');
  // Directories: move across parents, replace an empty dir, NOTEMPTY, ISDIR, NOTDIR.
  fs.mkdir(root, 'd1');
  fs.mkdir(root, 'd2');
  put(fs, root, 'd1/x', 'X');
  fs.mkdir(root, 'd1/sub');
  fs.rename(root, 'd1', root, 'd2');
  assert.equal(get(fs, root, 'd2/x'), 'X');
  assert.equal(fs.statPath(root, '.', true).nlink, 3n);
  fs.mkdir(root, 'e');
  put(fs, root, 'e/y', 'Y');
  throwsErrno(() => fs.rename(root, 'e', root, 'd2'), Errno.NOTEMPTY);
  throwsErrno(() => fs.rename(root, 'b', root, 'e'), Errno.ISDIR);
  throwsErrno(() => fs.rename(root, 'e', root, 'b'), Errno.NOTDIR);
  throwsErrno(() => fs.rename(root, 'b', root, 'c/'), Errno.NOTDIR);
  throwsErrno(() => fs.rename(root, 'nope', root, 'z'), Errno.NOENT);
  throwsErrno(() => fs.rename(root, 'b', root, 'nope/z'), Errno.NOENT);
  // A directory cannot move into itself or below itself.
  throwsErrno(() => fs.rename(root, 'd2', root, 'd2/sub/deeper'), Errno.INVAL);
  throwsErrno(() => fs.rename(root, 'd2', root, 'd2/new'), Errno.INVAL);
  throwsErrno(() => fs.rename(root, '.', root, 'q'), Errno.INVAL);
  // Moving a directory re-parents it: `..` follows, nlink of both parents adjusts.
  fs.rename(root, 'd2/sub', root, 'e/sub');
  const sub = fs.lookup(root, 'e/sub', true);
  assert.equal(fs.readdir(sub)[1].ino, BigInt(fs.lookup(root, 'e', true) as number));
  assert.equal(fs.statPath(root, 'd2', true).nlink, 2n);
  assert.equal(fs.statPath(root, 'e', true).nlink, 3n);
  // Renaming with dir handles on both sides.
  const e = fs.lookup(root, 'e', true);
  const d2 = fs.lookup(root, 'd2', true);
  fs.rename(e, 'y', d2, 'y2');
  assert.equal(get(fs, d2, 'y2'), 'Y');
  // A symlink is renamed itself, not its target.
  fs.symlink('d2', root, 'ln');
  fs.rename(root, 'ln', root, 'ln2');
  assert.equal(fs.readlink(root, 'ln2'), 'd2');
  assert.equal(fs.statPath(root, 'd2', false).filetype, FileType.DIRECTORY);
});
