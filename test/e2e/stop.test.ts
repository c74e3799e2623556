// `roam stop` and SIGTERM end a VM: it leaves `roam ps`, its control socket and
// its registry file are removed, and its process exits 143.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { example, HOME, ROAM, roam, start, until } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';

const registry = (id: string): string[] =>
  fs.readdirSync(path.join(HOME, 'vms')).filter((f) => f.startsWith(id));

async function running() {
  const vm = start(['run', example('counter'), '100000', '50']);
  const id = await vm.vmId;
  await until(() => vm.stdout().length > 0, 'the counter to print');
  assert.ok(registry(id).length >= 2, 'a socket and a record while it runs');
  return { vm, id };
}

test('roam stop ends a VM and removes its control socket and record', async () => {
  const { vm, id } = await running();
  const r = await roam(['stop', id, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { event: 'stopped', id });
  assert.equal(await vm.exited, 143);
  assert.match(vm.stderr(), /stopped by `roam stop`; the VM ends/);
  assert.deepEqual(registry(id), []);
  const ps = await roam(['ps', '--json']);
  assert.ok(!(JSON.parse(ps.stdout) as Array<{ id: string }>).some((v) => v.id === id));
});

test('SIGTERM ends a VM the same way, leaving no control socket behind', async () => {
  const { vm, id } = await running();
  vm.proc.kill('SIGTERM');
  assert.equal(await vm.exited, 143);
  assert.deepEqual(registry(id), []);
});

test('roam stop of a VM that does not exist is refused (exit 3) and says where to look', async () => {
  const r = await roam(['stop', 'nosuchvm']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /no running VM "nosuchvm".*roam ps.*\[no-such-vm\]/);
  const j = await roam(['stop', 'nosuchvm', '--json']);
  assert.equal(j.code, 3);
  assert.equal((JSON.parse(j.stdout) as { code: string }).code, 'no-such-vm');
});

test('roam ps lists an empty cstrap as waiting, with its address, and roam stop ends it', async () => {
  const dst = await cstrap();
  let listed:
    { id: string; kind?: string; listen?: string; state: string; rss: number } | undefined;
  await until(() => {
    const out = spawnSync(process.execPath, [ROAM, 'ps', '--json'], {
      env: { ...process.env, ROAM_HOME: HOME },
      encoding: 'utf8',
    }).stdout;
    listed = (JSON.parse(out) as Array<NonNullable<typeof listed>>).find(
      (v) => v.listen === dst.addr,
    );
    return listed !== undefined;
  }, 'the cstrap in roam ps');
  assert.equal(listed!.kind, 'cstrap');
  assert.equal(listed!.state, 'waiting');
  assert.ok(listed!.rss > 0);
  const table = await roam(['ps']);
  assert.match(
    table.stdout,
    new RegExp(`${listed!.id}\\s+\\d+\\s+waiting\\s+\\d+ MiB\\s+\\S+\\s+waiting on ${dst.addr}`),
  );
  const r = await roam(['stop', listed!.id]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await dst.exited, 143);
});

test('cstrap --json reports as JSON lines on stderr', async () => {
  const r = start(['cstrap', '--listen', '127.0.0.1:0', '--json']);
  r.vmId.catch(() => {}); // an empty cstrap prints no VM id
  await until(() => r.stderr().includes('\n'), 'the cstrap to report');
  const first = JSON.parse(r.stderr().split('\n')[0]) as { event: string; addr: string };
  assert.equal(first.event, 'listening');
  assert.match(first.addr, /^127\.0\.0\.1:\d+$/);
  r.proc.kill('SIGTERM');
  await r.exited;
});
