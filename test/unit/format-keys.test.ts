import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultKeyPath, loadKey, loadOrCreateKey } from '../../src/format/keys.js';
import { roamHome } from '../../src/util/home.js';

test('defaultKeyPath honours ROAM_HOME, else ~/.roam', () => {
  assert.equal(defaultKeyPath({ ROAM_HOME: '/srv/roam' }), '/srv/roam/checkpoint.key');
  assert.equal(defaultKeyPath({}), join(homedir(), '.roam', 'checkpoint.key'));
});

test('an empty ROAM_HOME means ~/.roam for the key and for everything else alike', () => {
  assert.equal(defaultKeyPath({ ROAM_HOME: '' }), join(homedir(), '.roam', 'checkpoint.key'));
  assert.equal(roamHome({ ROAM_HOME: '' }), join(homedir(), '.roam'));
  assert.equal(
    join(roamHome({ ROAM_HOME: '/x' }), 'checkpoint.key'),
    defaultKeyPath({ ROAM_HOME: '/x' }),
  );
});

test('loadOrCreateKey creates a 0600 key in a new directory, then reloads the same key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-key-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'home', 'checkpoint.key');
  const k1 = await loadOrCreateKey(path);
  assert.equal(k1.length, 32);
  assert.notDeepEqual(k1, Buffer.alloc(32));
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(await loadOrCreateKey(path), k1);
  assert.deepEqual(await loadKey(path), k1);
});

test('loadKey accepts hex, refuses wrong sizes and missing files with the path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'roam-key-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hex = join(dir, 'hex.key');
  await writeFile(hex, 'ab'.repeat(32) + '\n');
  assert.deepEqual(await loadKey(hex), Buffer.alloc(32, 0xab));
  const short = join(dir, 'short.key');
  await writeFile(short, Buffer.alloc(16));
  await assert.rejects(loadKey(short), /short\.key must hold 32 bytes/);
  await assert.rejects(
    loadKey(join(dir, 'none')),
    (e: Error) => e.message.includes(join(dir, 'none')) && /ENOENT/.test(e.message),
  );
});

test('a key file is read bounded: --key /dev/zero is refused at once, not read forever', async () => {
  await assert.rejects(loadKey('/dev/zero'), /must hold 32 bytes/);
});
