import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Errno, FileType } from '../../src/guest/errno.js';
import { HostFs } from '../../src/guest/hostfs.js';
import { throwsErrno } from '../fs-fixtures.js';

function setup(t: { after(fn: () => void): void }) {
  const dir = nfs.mkdtempSync(path.join(os.tmpdir(), 'roam-hostfs-'));
  const fs = new HostFs(dir);
  t.after(() => {
    fs.closeAll();
    nfs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    fs,
    root: fs.root(),
    put: (p: string, s: string) => nfs.writeFileSync(path.join(dir, p), s),
    get: (p: string) => nfs.readFileSync(path.join(dir, p), 'utf8'),
  };
}

test('readdir: . and .. first, sorted names, host inodes and types', (t) => {
  const { dir, fs, root, put } = setup(t);
  nfs.mkdirSync(path.join(dir, 'sub'));
  put('b', '');
  put('a', '');
  nfs.symlinkSync('a', path.join(dir, 'l'));
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
  assert.equal(ents[2].ino, nfs.lstatSync(path.join(dir, 'a'), { bigint: true }).ino);
  assert.equal(ents[1].ino, ents[0].ino, '.. of the mount root is the root');
  const sub = fs.lookup(root, 'sub', true);
  assert.equal(sub, 'sub');
  assert.equal(fs.readdir(sub)[1].ino, ents[0].ino);
  throwsErrno(() => fs.readdir(fs.lookup(root, 'a', true)), Errno.NOTDIR);
});

test('mkdir and rmdir edge cases', (t) => {
  const { dir, fs, root, put } = setup(t);
  fs.mkdir(root, 'a');
  fs.mkdir(root, 'a/b/');
  assert.ok(nfs.statSync(path.join(dir, 'a/b')).isDirectory());
  throwsErrno(() => fs.mkdir(root, 'a'), Errno.EXIST);
  throwsErrno(() => fs.mkdir(root, 'x/y'), Errno.NOENT);
  put('f', '');
  throwsErrno(() => fs.mkdir(root, 'f/g'), Errno.NOTDIR);
  throwsErrno(() => fs.rmdir(root, 'a'), Errno.NOTEMPTY);
  throwsErrno(() => fs.rmdir(root, 'f'), Errno.NOTDIR);
  throwsErrno(() => fs.rmdir(root, '.'), Errno.INVAL);
  throwsErrno(() => fs.rmdir(root, 'a/b/..'), Errno.NOTEMPTY);
  fs.symlink('a', root, 'la');
  throwsErrno(() => fs.rmdir(root, 'la/'), Errno.NOTDIR);
  fs.rmdir(root, 'a/b');
  fs.rmdir(root, 'a');
  assert.ok(!nfs.existsSync(path.join(dir, 'a')));
});

test('unlink: files and links, ISDIR for directories', (t) => {
  const { dir, fs, root, put } = setup(t);
  nfs.mkdirSync(path.join(dir, 'd'));
  put('f', 'x');
  throwsErrno(() => fs.unlink(root, 'd'), Errno.ISDIR);
  throwsErrno(() => fs.unlink(root, 'nope'), Errno.NOENT);
  throwsErrno(() => fs.unlink(root, 'f/'), Errno.NOTDIR);
  fs.symlink('f', root, 'l');
  fs.unlink(root, 'l');
  assert.ok(nfs.existsSync(path.join(dir, 'f')));
  const h = fs.open(root, 'f', {});
  fs.unlink(root, 'f');
  throwsErrno(() => fs.lookup(root, 'f', true), Errno.NOENT);
  // A new file under the old name must not be served through a stale cached fd.
  put('f', 'new');
  const b = new Uint8Array(3);
  fs.read(h, 0, b);
  assert.equal(Buffer.from(b).toString(), 'new');
});

test('rename: POSIX edge cases', (t) => {
  const { dir, fs, root, put, get } = setup(t);
  put('a', 'A');
  put('b', 'B');
  fs.rename(root, 'a', root, 'b');
  assert.equal(get('b'), 'A');
  assert.ok(!nfs.existsSync(path.join(dir, 'a')));
  fs.rename(root, 'b', root, 'b');
  assert.equal(get('b'), 'A');
  nfs.mkdirSync(path.join(dir, 'd1/sub'), { recursive: true });
  put('d1/x', 'X');
  nfs.mkdirSync(path.join(dir, 'd2'));
  fs.rename(root, 'd1', root, 'd2');
  assert.equal(get('d2/x'), 'X');
  nfs.mkdirSync(path.join(dir, 'e'));
  put('e/y', 'Y');
  throwsErrno(() => fs.rename(root, 'e', root, 'd2'), Errno.NOTEMPTY);
  throwsErrno(() => fs.rename(root, 'b', root, 'e'), Errno.ISDIR);
  throwsErrno(() => fs.rename(root, 'e', root, 'b'), Errno.NOTDIR);
  throwsErrno(() => fs.rename(root, 'b', root, 'c/'), Errno.NOTDIR);
  throwsErrno(() => fs.rename(root, 'nope', root, 'z'), Errno.NOENT);
  throwsErrno(() => fs.rename(root, 'd2', root, 'd2/sub/deeper'), Errno.INVAL);
  throwsErrno(() => fs.rename(root, '.', root, 'q'), Errno.INVAL);
  const e = fs.lookup(root, 'e', true);
  const d2 = fs.lookup(root, 'd2', true);
  fs.rename(e, 'y', d2, 'y2');
  assert.equal(get('d2/y2'), 'Y');
  fs.symlink('d2', root, 'ln');
  fs.rename(root, 'ln', root, 'ln2');
  assert.equal(fs.readlink(root, 'ln2'), 'd2');
});
