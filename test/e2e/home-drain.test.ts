// Node drain and calling home, end to end: `roam node drain` empties a node by
// live migration (its VM's home finds it another node; the clients stay
// connected), and a VM whose credit runs out asks home, which tops it up from
// the broker, so it runs on past what its first token bought.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { until } from '../helpers.js';
import { Client, cluster, submit, T } from '../home-fixtures.js';

test(
  'roam node drain moves the VM live to another node, clients connected, and the daemon exits',
  T,
  async () => {
    const c = await cluster(2);
    try {
      const { job, port } = await submit(c);
      const a = new Client(port, 1);
      const ra = a.run();
      await until(() => a.got > 20, 'first replies');
      const n1 = c.nodes[0];
      const drained = JSON.parse(await c.cli(['node', 'drain', '--state', n1.state, '--json'])) as {
        drainedMs: number;
      };
      assert.ok(drained.drainedMs > 0);
      assert.notEqual(n1.proc.exitCode, null, 'the drained daemon exited');
      const before = a.got;
      await until(() => a.got > before + 20 || !!a.error, 'replies from the new node');
      await ra.stop();
      assert.equal(a.error, null);
      assert.ok(!a.closed, 'the client stayed connected');
      const j = JSON.parse(await c.roam(['jobs', '--json'])) as {
        job: string;
        nodeId: string;
        state: string;
      };
      assert.equal(j.job, job);
      assert.equal(j.nodeId, 'n2');
      assert.equal(j.state, 'running');
      assert.equal(fs.existsSync(`${n1.state}/node.pid`), true);
      // roam ps --node lists the VMs a node hosts: the job's VM runs on n2 now.
      const ps = JSON.parse(await c.cli(['ps', '--json', '--node', c.nodes[1].state])) as Array<{
        kind?: string;
        state: string;
      }>;
      assert.ok(
        ps.some((v) => v.state === 'running' && v.kind !== 'cstrap'),
        JSON.stringify(ps),
      );
    } finally {
      await c.stop();
    }
  },
);

test('a VM whose balance runs out calls home, which tops it up; it runs on', T, async () => {
  const c = await cluster(1);
  try {
    // Two units: gone within seconds of CPU and memory.
    const { port } = await submit(c, 0, ['--units', '2']);
    const a = new Client(port, 1);
    const ra = a.run();
    const log = () => c.logs('home');
    await until(
      () => (log().match(/topped up/g) ?? []).length >= 2 || !!a.error,
      'two top-ups',
      120_000,
    );
    await ra.stop();
    assert.equal(a.error, null);
    assert.ok(!a.closed);
    const j = JSON.parse(await c.roam(['jobs', '--json'])) as { state: string };
    assert.equal(j.state, 'running');
  } finally {
    await c.stop();
  }
});
