// The control service in one process against a real broker and SQLite: keys,
// descriptions kept by version, placement spread and stable, each node seeing
// only its own jobs, Pulse releases on a change, and moves when placement changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { broker } from '../broker-fixtures.js';
import { startControl } from '../../src/control/server.js';
import { ControlClient } from '../../src/control/client.js';
import { SqliteStore } from '../../src/control/store.js';
import { place } from '../../src/control/workload.js';
import { Rendezvous } from '../../src/pulse/rendezvous.js';
import { Subscriber } from '../../src/pulse/client.js';
import { H } from '../../src/pulse/wire.js';
import { example } from '../helpers.js';

void test('placement spreads evenly and keeps what may stay', () => {
  const p = place(8, ['n1', 'n2', 'n3'], new Map());
  const count = (m: Map<number, string>, n: string) =>
    [...m.values()].filter((x) => x === n).length;
  assert.deepEqual(
    ['n1', 'n2', 'n3'].map((n) => count(p, n)),
    [3, 3, 2],
  );
  const q = place(8, ['n1', 'n3'], p);
  for (const [i, n] of p) if (n !== 'n2') assert.equal(q.get(i), n);
  assert.deepEqual(
    ['n1', 'n3'].map((n) => count(q, n)),
    [4, 4],
  );
});

void test('control service: keys, descriptions, node views, Pulse and moves', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-control-'));
  const b = await broker({ chainLength: 2000 });
  const rv = new Rendezvous();
  const rendezvous = await rv.listen();
  const bc = await b.customer('alice', 10_000_000); // the control service buys on this account
  for (const n of ['n1', 'n2', 'n3']) await b.client.enrollNode(n);
  const ctl = await startControl(new SqliteStore(path.join(dir, 'control.db')), {
    broker: bc,
    rendezvous: [rendezvous],
  });
  const sub = new Subscriber({ renewMs: 60_000 });
  try {
    assert.match(ctl.adminKey ?? '', /^[0-9a-f]{64}$/);
    const admin = new ControlClient(ctl.url, ctl.adminKey!);
    const alice = new ControlClient(ctl.url, (await admin.addCustomer('alice')).key);
    const nodes = new Map<string, ControlClient>();
    for (const n of ['n1', 'n2', 'n3'])
      nodes.set(n, new ControlClient(ctl.url, (await admin.addNode(n)).key));
    // Wrong keys and wrong roles are refused.
    await assert.rejects(new ControlClient(ctl.url, 'ab'.repeat(32)).submit({}), /customer key/);
    await assert.rejects(nodes.get('n1')!.submit({}), /customer key/);
    await assert.rejects(alice.node(), /node key/);
    await assert.rejects(alice.addNode('n9'), /admin key/);
    await assert.rejects(alice.submit({ name: 'x' }), /programs/);

    const { sha256 } = await alice.putProgram(fs.readFileSync(example('echo-server')));
    const desc = (instances: number, nodeIds: string[]) => ({
      name: 'web',
      programs: [{ sha256, args: [] }],
      instances,
      memoryMiB: 64,
      ports: ['127.0.0.1:7000'],
      placement: { nodes: nodeIds },
    });
    await assert.rejects(
      alice.submit({ ...desc(1, ['n1']), programs: [{ sha256: 'ab'.repeat(32) }] }),
      /not been uploaded/,
    );
    await assert.rejects(alice.submit(desc(1, ['n7'])), /not enrolled/);

    const before = (await nodes.get('n1')!.node())!;
    assert.equal(before.view.instances.length, 0);
    assert.deepEqual(before.rendezvous, [rendezvous]);
    const event = new Promise<Buffer>((r) => sub.once('event', (_h: Buffer, s: Buffer) => r(s)));
    sub.watch(Buffer.from(before.h, 'hex'), before.rendezvous);
    await new Promise((r) => setTimeout(r, 50));

    assert.equal((await alice.submit(desc(8, ['n1', 'n2', 'n3']))).version, 1);
    // The change released the s behind the H(s) n1 held: it verifies.
    assert.ok(H(await event).equals(Buffer.from(before.h, 'hex')));
    const views = new Map<string, Awaited<ReturnType<ControlClient['node']>>>();
    for (const [n, c] of nodes) views.set(n, await c.node());
    assert.deepEqual(
      [...views.values()].map((v) => v!.view.instances.length),
      [3, 3, 2],
    );
    const n1 = views.get('n1')!;
    assert.notEqual(n1.h, before.h);
    assert.equal(await nodes.get('n1')!.node(n1.view.version), null, 'unchanged: 304');
    const ports = [...views.values()].flatMap((v) =>
      v!.view.instances.map((i) => (i.role === 'run' ? i.tcplisten[0] : '')),
    );
    assert.equal(new Set(ports).size, 8);
    await assert.rejects(alice.submit({ ...desc(8, ['n1']), version: 1 }), /not newer/);

    // Report every instance running, then take n2 out of the placement.
    for (const [, c] of nodes) {
      const v = (await c.node())!;
      await c.report(
        v.view.instances.map((i) => ({
          jobId: i.jobId,
          state: 'running' as const,
          vm: `vm-${i.jobId.slice(0, 6)}`,
        })),
      );
    }
    const w = await alice.submit(desc(8, ['n1', 'n3']));
    assert.equal(w.version, 2);
    const n2 = (await nodes.get('n2')!.node())!;
    assert.equal(n2.view.instances.length, 3);
    assert.ok(n2.view.instances.every((i) => i.role === 'leave' && i.to === null && i.vm !== null));
    const arriving = [
      ...(await nodes.get('n1')!.node())!.view.instances,
      ...(await nodes.get('n3')!.node())!.view.instances,
    ].filter((i) => i.role === 'arrive');
    assert.equal(arriving.length, 3);
    // The destinations' cstraps come up; the leaving node is told where each is.
    for (const [n, c] of [
      ['n1', nodes.get('n1')!],
      ['n3', nodes.get('n3')!],
    ] as const) {
      const mine = (await c.node())!.view.instances.filter((i) => i.role === 'arrive');
      await c.report(
        mine.map((i) => ({
          jobId: i.jobId,
          state: 'booted' as const,
          vm: 'vm-x',
          cstrap: `${n}:1`,
        })),
      );
    }
    const told = (await nodes.get('n2')!.node())!;
    assert.ok(told.view.instances.every((i) => i.role === 'leave' && i.to !== null));
    await nodes
      .get('n2')!
      .report(told.view.instances.map((i) => ({ jobId: i.jobId, state: 'migrated' as const })));
    const after = (await nodes.get('n2')!.node())!;
    assert.equal(after.view.instances.length, 0);
    assert.equal(after.view.retire.length, 3);
    const st = await alice.workload('web');
    assert.deepEqual(st.versions, [1, 2]);
    assert.ok(
      st.instances.every((i) => i.node !== 'n2' && i.from === null && i.state === 'running'),
    );
  } finally {
    sub.close();
    rv.close();
    await ctl.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
