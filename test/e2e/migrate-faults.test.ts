// Fault injection: whatever goes wrong before the destination confirms, the source
// runs on with output identical to an unmigrated run, and the destination refuses
// (an empty cstrap keeps waiting and can still take a good migration).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { example, roam, start, tmpdir, until } from '../helpers.js';
import { cstrap, proxy, READY_BYTES, type FrameHook } from '../migrate-fixtures.js';

// Long enough that `roam migrate` finds it running on a loaded machine.
const PROG = ['counter', '80', '40'];
let reference = '';

async function source() {
  if (!reference) {
    const r = await roam(['run', '--quiet', example(PROG[0]), ...PROG.slice(1)]);
    assert.equal(r.code, 0, r.stderr);
    reference = r.stdout;
  }
  const vm = start(['run', example(PROG[0]), ...PROG.slice(1)]);
  const id = await vm.vmId;
  await until(() => vm.stdout().length > 0, 'program start');
  return { vm, id };
}

/** The migration fails, the source finishes on its own with the full output. */
async function expectSourceRunsOn(
  vm: Awaited<ReturnType<typeof source>>['vm'],
  m: { code: number; stderr: string },
  why: RegExp,
) {
  assert.notEqual(m.code, 0, 'the migration must fail');
  assert.match(m.stderr, why);
  assert.match(m.stderr, /runs on here; nothing was lost/);
  assert.equal(await vm.exited, 0, vm.stderr());
  assert.equal(vm.stdout(), reference, 'the source ran on with identical output');
}

/** The cstrap refused, still waits, and still takes a clean migration. */
async function expectCstrapStillWorks(dst: Awaited<ReturnType<typeof cstrap>>) {
  const again = await source();
  const m = await roam(['migrate', again.id, '--to', dst.addr]);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(await again.vm.exited, 0);
  assert.equal(await dst.exited, 0, dst.stderr());
  assert.equal(again.vm.stdout() + dst.stdout(), reference);
}

test('no cstrap at the address: refused connection, source runs on', async () => {
  const { vm, id } = await source();
  const m = await roam(['migrate', id, '--to', '127.0.0.1:1']);
  await expectSourceRunsOn(vm, m, /cannot reach 127\.0\.0\.1:1/);
});

test('destination with a different key: handshake refused both ways', async () => {
  const keyFile = path.join(tmpdir('key'), 'other.key');
  fs.writeFileSync(keyFile, Buffer.alloc(32, 7));
  const dst = await cstrap(['--key', keyFile]);
  const { vm, id } = await source();
  const m = await roam(['migrate', id, '--to', dst.addr]);
  await expectSourceRunsOn(vm, m, /does not hold the same key/);
  assert.match(dst.stderr(), /does not hold the same key/);
  dst.proc.kill();
});

test('destination pinned to another loader hash refuses before any page is sent', async () => {
  const dst = await cstrap(['--loader-hash', '0'.repeat(64)]);
  const { vm, id } = await source();
  const m = await roam(['migrate', id, '--to', dst.addr]);
  await expectSourceRunsOn(vm, m, /refused the VM: loader hash .* is not the pinned/);
  dst.proc.kill();
});

test('destination without a WASM feature the VM needs is refused up front', async () => {
  const dst = await cstrap(['--wasm-features', 'mutable-globals']);
  const { vm, id } = await source();
  const m = await roam(['migrate', id, '--to', dst.addr]);
  await expectSourceRunsOn(vm, m, /lacks WASM feature\(s\) the VM needs: bulk-memory/);
  dst.proc.kill();
});

const viaProxy = (name: string, hook: FrameHook, why: RegExp, dstWhy: RegExp) =>
  test(name, async () => {
    const dst = await cstrap();
    const p = await proxy(dst.addr, hook);
    const { vm, id } = await source();
    const m = await roam(['migrate', id, '--to', p.addr]);
    await expectSourceRunsOn(vm, m, why);
    await until(
      () => dstWhy.test(dst.stderr()),
      `the cstrap to report the failure (${dstWhy})`,
      10_000,
    );
    p.close();
    await expectCstrapStillWorks(dst);
  });

void viaProxy(
  'a byte flipped in the stream: the destination refuses (authentication)',
  (dir, i, f) => {
    if (dir === 'up' && i === 3) {
      const g = Buffer.from(f);
      g[g.length - 20] ^= 1;
      return g;
    }
    return f;
  },
  /failed|closed/,
  /failed authentication/,
);

void viaProxy(
  'a frame replayed: the destination refuses',
  (dir, i, f) => (dir === 'up' && i === 3 ? [f, f] : f),
  /failed|closed/,
  /failed authentication/,
);

void viaProxy(
  'stream truncated (connection cut in pre-copy): the destination discards it',
  (dir, i, f) => (dir === 'up' && i === 4 ? 'cut' : f),
  /closed|reset|EPIPE|failed/,
  /migration from .* failed/,
);

test('destination killed during pre-copy: source runs on', async () => {
  const dst = await cstrap();
  const p = await proxy(dst.addr, (dir, i, f) => {
    if (dir === 'up' && i === 3) dst.proc.kill('SIGKILL');
    return f;
  });
  const { vm, id } = await source();
  const m = await roam(['migrate', id, '--to', p.addr]);
  await expectSourceRunsOn(vm, m, /failed/);
  p.close();
});

test('destination killed after the freeze, before its READY arrives: source runs on', async () => {
  const dst = await cstrap();
  // Swallow the destination's READY and kill it: without a home the source decides, and aborts.
  const p = await proxy(dst.addr, (dir, _i, f) => {
    if (dir === 'down' && f.length === READY_BYTES) {
      dst.proc.kill('SIGKILL');
      return 'cut';
    }
    return f;
  });
  const { vm, id } = await source();
  const m = await roam(['migrate', id, '--to', p.addr]);
  await expectSourceRunsOn(vm, m, /closed the connection before it was ready|failed/);
  p.close();
});
