// Pull migration (thesis 8.3): the source VM serves itself at a boot URI and a
// cstrap that only connects out pulls it. A puller without the job key is
// refused and the source keeps serving; the one with it gets the VM, which
// answers on the same port with its state (the echo count) intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { example, freePort, roam, start, tmpdir, until } from '../helpers.js';
import { echo } from '../cluster-fixtures.js';
import { cstrap } from '../migrate-fixtures.js';

void test(
  'roam migrate --serve and roam cstrap --boot-uri: the destination pulls the VM',
  { timeout: 180_000 },
  async () => {
    const dir = tmpdir('pull');
    const port = await freePort();
    const vm = start(['run', '--tcplisten', `127.0.0.1:${port}`, example('echo-server')]);
    vm.vmId.catch(() => undefined);
    const kids = [vm];
    try {
      let first: string | null = null;
      for (let i = 0; i < 300 && !(first = await echo(port, 'one', 500)); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(first, 'echo 1: one');
      const ps = await roam(['ps']);
      const id = ps.stdout
        .split('\n')
        .find((l) => l.includes(String(vm.proc.pid)))
        ?.split(/\s+/)[0];
      assert.ok(id, ps.stdout);
      const mig = start(['migrate', id, '--serve', '127.0.0.1:0']);
      mig.vmId.catch(() => undefined);
      kids.push(mig);
      await until(() => /serving the VM at (http:\S+)/.test(mig.stderr()), 'the boot URI', 60_000);
      const uri = /serving the VM at (http:\S+)/.exec(mig.stderr())![1];
      // Someone without the key: refused before a page moves; the VM runs on here.
      const wrongKey = path.join(dir, 'wrong.key');
      fs.writeFileSync(wrongKey, randomBytes(32));
      const wrong = await roam(['cstrap', '--boot-uri', uri, '--key', wrongKey]);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /does not hold the same key/);
      assert.equal(await echo(port, 'two'), 'echo 2: two');
      // The key holder pulls it.
      const dst = start(['cstrap', '--boot-uri', uri]);
      kids.push(dst);
      assert.ok((await dst.vmId).length > 0);
      assert.equal(await mig.exited, 0, mig.stderr());
      assert.equal(await vm.exited, 0, 'the source ends once the destination confirmed');
      let third: string | null = null;
      for (let i = 0; i < 100 && !(third = await echo(port, 'three', 500)); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(third, 'echo 3: three');
      // Nothing is served at the URI any more.
      const late = await roam(['cstrap', '--boot-uri', uri]);
      assert.notEqual(late.code, 0);
      assert.match(late.stderr, /cannot pull/);
    } finally {
      for (const k of kids) k.proc.kill('SIGKILL');
    }
  },
);

void test(
  'roam migrate --serve --pull-into: a listening cstrap is told over its upload channel, and pulls',
  { timeout: 180_000 },
  async () => {
    const port = await freePort();
    const vm = start(['run', '--tcplisten', `127.0.0.1:${port}`, example('echo-server')]);
    const kids = [vm];
    try {
      const id = await vm.vmId;
      let first: string | null = null;
      for (let i = 0; i < 300 && !(first = await echo(port, 'one', 500)); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(first, 'echo 1: one');
      const dst = await cstrap();
      kids.push(dst);
      const mig = await roam([
        'migrate',
        id,
        '--serve',
        '127.0.0.1:0',
        '--pull-into',
        dst.addr,
        '--json',
      ]);
      assert.equal(mig.code, 0, mig.stderr);
      assert.equal(await vm.exited, 0, 'the source ends once the destination confirmed');
      // The cstrap connected out to the VM's boot URI: it says so, and the VM answers there.
      assert.match(dst.stderr(), /told to boot from http:\S+\/v1\/vm \(vm\)/);
      assert.match(dst.stderr(), /roam: vm \S+ arrived from http:/);
      let second: string | null = null;
      for (let i = 0; i < 100 && !(second = await echo(port, 'two', 500)); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(second, 'echo 2: two');
    } finally {
      for (const k of kids) k.proc.kill('SIGKILL');
    }
  },
);
