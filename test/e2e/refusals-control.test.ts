// `roam checkpoint` refusals: an unknown VM, and an output path that cannot be
// written. A failed checkpoint leaves no file behind and does not disturb the VM:
// it keeps running and prints exactly what an uninterrupted run prints.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { example, roam, start, tmpdir, until } from '../helpers.js';

const dir = tmpdir('refuse-ctl');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const noCrash = (stderr: string) =>
  assert.doesNotMatch(stderr, /^\s+at /m, `no JavaScript stack trace: ${stderr}`);

test('checkpoint of a VM that does not exist: refused, pointing at `roam ps`', async () => {
  const out = path.join(dir, 'nosuchvm.ckpt');
  const r = await roam(['checkpoint', 'nosuchvm', '-o', out]);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /no running VM "nosuchvm"/);
  assert.match(r.stderr, /roam ps/);
  noCrash(r.stderr);
  assert.equal(fs.existsSync(out), false);
});

test('checkpoint into unwritable places fails cleanly, leaves no file, and the VM runs on undisturbed', async () => {
  const args = [example('counter'), '100', '50']; // ~5 s: long enough for every attempt below
  const reference = roam(['run', '--quiet', ...args]);
  const vm = start(['run', ...args]);
  const id = await vm.vmId;
  await until(() => vm.stdout().includes('tick 2\n'), 'counter to tick');

  const aFile = path.join(dir, 'plain-file');
  fs.writeFileSync(aFile, 'x');
  const aDir = path.join(dir, 'existing-dir');
  fs.mkdirSync(aDir);
  const bad: Array<{ out: string; why: RegExp; gone: string[] }> = [
    {
      out: '/nonexistent/dir/x.ckpt',
      why: /\/nonexistent\/dir\/x\.ckpt.*(ENOENT|no such file)/,
      gone: ['/nonexistent/dir/x.ckpt', '/nonexistent/dir/x.ckpt.partial', '/nonexistent'],
    },
    {
      out: path.join(aFile, 'x.ckpt'),
      why: /plain-file\/x\.ckpt.*(ENOTDIR|not a directory)/,
      gone: [],
    },
    {
      out: aDir,
      why: /existing-dir.*(EISDIR|is a directory|directory)/,
      gone: [`${aDir}.partial`],
    },
  ];
  for (const fmt of ['stream', 'image']) {
    for (const b of bad) {
      const before = fs.readdirSync(dir).sort();
      const r = await roam(['checkpoint', id, '-o', b.out, '--format', fmt]);
      const ctx = `checkpoint -o ${b.out} --format ${fmt}: code ${r.code}, stderr ${JSON.stringify(r.stderr)}`;
      assert.equal(r.code, 3, ctx);
      assert.equal(r.stdout, '', ctx);
      assert.match(r.stderr, b.why, ctx);
      noCrash(r.stderr);
      for (const g of b.gone) assert.equal(fs.existsSync(g), false, `${ctx}: ${g} must not exist`);
      assert.deepEqual(fs.readdirSync(dir).sort(), before, `${ctx}: no partial file left behind`);
      assert.deepEqual(fs.readdirSync(aDir), [], `${ctx}: nothing written into the directory`);
      assert.equal(fs.readFileSync(aFile, 'utf8'), 'x');
      assert.equal(vm.proc.exitCode, null, `${ctx}: the VM must still be running`);
    }
  }

  // The VM is still fully usable: a checkpoint to a good path works after the failures.
  const good = path.join(dir, 'good.ckpt');
  const ok = await roam(['checkpoint', id, '-o', good]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /written to/);

  assert.equal(await vm.exited, 0, vm.stderr());
  const ref = await reference;
  assert.equal(ref.code, 0, ref.stderr);
  assert.match(ref.stdout, /^tick 99\nsum \d+\n$/m);
  assert.equal(vm.stdout(), ref.stdout, 'the failed checkpoints must not disturb the running VM');
  assert.doesNotMatch(vm.stderr(), /^\s+at |Error/m, 'the VM did not crash or log errors');

  // And that last checkpoint restores to the rest of the same output.
  const restored = await roam(['restore', '--quiet', good]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.ok(
    restored.stdout.length > 0 && ref.stdout.endsWith(restored.stdout),
    `restored output is a suffix: ${restored.stdout}`,
  );
});
