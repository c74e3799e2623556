// A damaged, foreign or missing checkpoint file is refused by `roam restore` and
// `roam inspect` with a message naming the problem, and nothing runs: no VM is
// started, nothing is printed on stdout. The untouched files still restore.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pageOffset } from '../../src/format/image.js';
import { defaultKeyPath, FORMAT_VERSION, loadKey, readCheckpoint } from '../../src/format/index.js';
import { HOME, example, roam, start, tmpdir, until } from '../helpers.js';

type Format = 'stream' | 'image';
const dir = tmpdir('refuse-ck');
const files: Record<Format, string> = {
  stream: path.join(dir, 'counter.stream'),
  image: path.join(dir, 'counter.image'),
};
let reference = '';

/** A copy that keeps the image's holes (an image of a 1 MiB program is a 4 GiB sparse file). */
function copy(src: string, tag: string): string {
  const dst = path.join(dir, tag);
  execFileSync('cp', ['--sparse=always', src, dst]);
  return dst;
}
function truncated(fmt: Format, size: number): string {
  const p = copy(files[fmt], `${fmt}-trunc-${size}`);
  fs.truncateSync(p, size);
  assert.equal(fs.statSync(p).size, size);
  return p;
}
function flipped(fmt: Format, offset: number): string {
  const p = copy(files[fmt], `${fmt}-flip-${offset}`);
  const fd = fs.openSync(p, 'r+');
  try {
    const b = Buffer.alloc(1);
    assert.equal(fs.readSync(fd, b, 0, 1, offset), 1, `offset ${offset} is inside the file`);
    b[0] ^= 0x10;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
  return p;
}
const size = (fmt: Format) => fs.statSync(files[fmt]).size;
/** Where the image's metadata record stream lives (superblock: magic, version, page size, offset u64, length u64). */
function imageMeta(): { offset: number; length: number } {
  const sb = Buffer.alloc(32);
  const fd = fs.openSync(files.image, 'r');
  try {
    fs.readSync(fd, sb, 0, 32, 0);
  } finally {
    fs.closeSync(fd);
  }
  return { offset: Number(sb.readBigUInt64LE(16)), length: Number(sb.readBigUInt64LE(24)) };
}

/** Both commands refuse `file`: exit 3 (refused input), the message matches `why`, nothing on stdout, no VM, no stack trace. */
async function refused(file: string, why: RegExp, env?: Record<string, string>): Promise<void> {
  const [r, i] = await Promise.all([
    roam(['restore', file], { env }),
    roam(['inspect', file], { env }),
  ]);
  for (const [cmd, res] of [
    ['restore', r],
    ['inspect', i],
  ] as const) {
    const ctx = `roam ${cmd} ${path.basename(file)}: code ${res.code}, stderr ${JSON.stringify(res.stderr)}`;
    assert.equal(res.code, 3, ctx);
    assert.equal(res.stdout, '', `${ctx}: nothing may run or be described`);
    assert.match(res.stderr, /^roam: /, ctx);
    assert.match(res.stderr, why, ctx);
    assert.doesNotMatch(res.stderr, /restored from|running/, `${ctx}: no VM may start`);
    assert.doesNotMatch(res.stderr, /^\s+at /m, `${ctx}: a refusal, not a crash`);
  }
}

after(() => fs.rmSync(dir, { recursive: true, force: true }));

before(async () => {
  const ref = roam(['run', '--quiet', example('counter'), '40', '50']);
  const vm = start(['run', example('counter'), '40', '50']);
  const id = await vm.vmId;
  await until(() => vm.stdout().includes('tick 3\n'), 'counter to tick a few times');
  for (const fmt of ['stream', 'image'] as const) {
    const r = await roam(['checkpoint', id, '-o', files[fmt], '--format', fmt]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /written to/);
  }
  assert.equal(await vm.exited, 0, vm.stderr());
  const rr = await ref;
  assert.equal(rr.code, 0, rr.stderr);
  reference = rr.stdout;
  assert.equal(vm.stdout(), reference);
  assert.match(reference, /^tick 39\nsum \d+$/m);
});

for (const fmt of ['stream', 'image'] as const) {
  test(`${fmt}: the untouched checkpoint restores and prints the remaining ticks`, async () => {
    const cp = await readCheckpoint(files[fmt], {
      key: await loadKey(defaultKeyPath({ ROAM_HOME: HOME })),
    });
    const at: number = JSON.parse(cp.kernel.toString()).stdoutBytes;
    assert.ok(at > 0 && at < reference.length, `frozen mid-run (stdout offset ${at})`);
    const [r, i] = await Promise.all([
      roam(['restore', '--quiet', files[fmt]]),
      roam(['inspect', files[fmt]]),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, reference.slice(at));
    assert.match(r.stdout, /tick 39\nsum \d+\n$/);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, new RegExp(`${fmt} v${FORMAT_VERSION}, signed`));
  });

  test(`${fmt}: truncated files are refused`, async () => {
    const n = size(fmt);
    for (const at of [10, Math.floor(n / 2), n - 1]) await refused(truncated(fmt, at), /truncated/);
  });

  test(`${fmt}: a file signed with another key is refused`, async () => {
    const other = fs.mkdtempSync(path.join(dir, 'home-otherkey-'));
    fs.writeFileSync(path.join(other, 'checkpoint.key'), randomBytes(32), { mode: 0o600 });
    await refused(files[fmt], /HMAC mismatch|key is wrong/, { ROAM_HOME: other });
    // A home without any key cannot check the signature either: refused, told to pass --key.
    const keyless = fs.mkdtempSync(path.join(dir, 'home-nokey-'));
    await refused(files[fmt], /signed.*--key/, { ROAM_HOME: keyless });
  });
}

// What a flipped byte is reported as depends on where it lands (a length field reads as
// truncation, a version field as unsupported); each names the problem with the file.
const corrupt =
  /corrupted|modified|mismatch|not a roam checkpoint|unsupported|unknown mandatory record|truncated/;

test('stream: a single flipped byte is refused (magic, record header, HEADER, MODULE, middle, last byte)', async () => {
  const n = size('stream');
  for (const at of [3, 9, 20, 5000, Math.floor(n / 2), n - 1])
    await refused(flipped('stream', at), corrupt);
});

test('image: a single flipped byte is refused (superblock, live page, metadata, last byte)', async () => {
  const meta = imageMeta();
  assert.equal(meta.offset + meta.length, size('image'));
  const offsets = [
    3,
    9,
    20,
    100, // magic, version, metadata offset, reserved superblock bytes
    pageOffset(1, 0) + 100, // the program's first page
    pageOffset(1, 100) + 7, // a page in the middle of its heap
    meta.offset + 50, // HEADER record
    meta.offset + Math.floor(meta.length / 2),
    size('image') - 1, // END record
  ];
  for (const at of offsets) await refused(flipped('image', at), corrupt);
});

// Issue 13: nothing reads the bytes between slots, so the file's allocated size is
// checked against what the (signed) metadata says was written (format-image.test.ts
// refuses 64 KiB there). One flipped byte costs one 4 KiB block, which can still hide
// in the extent-map block the bound allows for when it cannot tell whether ext4 merged
// two extents; Node has no lseek(SEEK_DATA) to look.
test(
  'image: a byte flipped in the middle of the file (outside every memory slot) is refused',
  {
    todo: 'one 4 KiB block outside the slots can hide in the allowance for an ext4 extent-map block',
  },
  async () => {
    await refused(flipped('image', Math.floor(size('image') / 2)), /outside every slot/);
  },
);

test('files that are not checkpoints: a .wasm program, random bytes, an empty file, a missing file', async () => {
  const rnd = path.join(dir, 'random.bin');
  fs.writeFileSync(rnd, randomBytes(5000));
  const empty = path.join(dir, 'empty.ckpt');
  fs.writeFileSync(empty, '');
  await refused(example('counter'), /not a roam checkpoint/);
  await refused(rnd, /not a roam checkpoint/);
  await refused(empty, /not a roam checkpoint: .*empty/);
  const missing = path.join(dir, 'no-such-file.ckpt');
  await refused(missing, /no such file/i);
  await refused(missing, /no-such-file\.ckpt/);
});
