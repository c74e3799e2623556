// The pull-only control plane end to end (thesis 8.3), every part its own
// process: broker, Pulse rendezvous, control service, three node daemons and an
// agent on each. A workload of 8 echo-server instances is submitted, changed,
// survives an agent killed and restarted, moves by live migration (pulled) when its
// placement changes, and converges by the slow poll when Pulse datagrams are
// lost. Each time the cluster must match the description: every instance
// answers on its port, on an allowed node, and exactly one VM runs per instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, sleep } from '../helpers.js';
import { cluster, echo, status, submit, upload, type Cluster } from '../cluster-fixtures.js';

/** VMs being served (a live control record) in a node daemon's state folder. */
function servedVms(state: string): number {
  let n = 0;
  for (const vm of fs.existsSync(state) ? fs.readdirSync(state) : []) {
    const dir = path.join(state, vm, 'vms');
    for (const f of fs.existsSync(dir)
      ? fs.readdirSync(dir).filter((x) => x.endsWith('.json'))
      : []) {
      try {
        const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as {
          pid: number;
          kind?: string;
        };
        if (r.kind === 'cstrap') continue; // an empty cstrap, not a VM
        process.kill(r.pid, 0);
        n++;
      } catch {
        /* gone */
      }
    }
  }
  return n;
}

async function converge(
  c: Cluster,
  want: { instances: number; nodes: string[]; base: number },
  what: string,
): Promise<void> {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < Number(process.env.ROAM_CONVERGE_MS ?? 240_000)) {
    const s = await status(c, 'web');
    const running = s.instances.filter(
      (i) => i.state === 'running' && i.from === null && want.nodes.includes(i.node),
    );
    const perNode = new Map(
      c.nodes.map((n) => [n.id, s.instances.filter((i) => i.node === n.id).length]),
    );
    const vms = new Map(c.nodes.map((n) => [n.id, servedVms(n.state)]));
    last = `${running.length}/${want.instances} running; per node ${JSON.stringify([...perNode])}; VMs ${JSON.stringify([...vms])}`;
    if (
      s.instances.length === want.instances &&
      running.length === want.instances &&
      c.nodes.every((n) => vms.get(n.id) === perNode.get(n.id))
    ) {
      const answers = await Promise.all(
        Array.from({ length: want.instances }, (_, i) => echo(want.base + i, `hello ${i}`)),
      );
      const gone = await Promise.all(
        [0, 1].map((k) => echo(want.base + want.instances + k, 'anyone?', 500)),
      );
      if (answers.every((a, i) => a?.endsWith(`: hello ${i}`)) && gone.every((g) => g === null)) {
        const cap = Math.ceil(want.instances / want.nodes.length);
        for (const n of want.nodes)
          assert.ok((perNode.get(n) ?? 0) <= cap, `${what}: ${n} holds more than its share`);
        return;
      }
      last += `; echoes ${JSON.stringify(answers)} gone ${JSON.stringify(gone)}`;
    }
    await sleep(500);
  }
  throw new Error(`${what}: the cluster did not converge: ${last}`);
}

void test(
  'a workload of 8 instances on 3 nodes: submit, change, agent restart, migration by placement, lost Pulse datagrams',
  { timeout: 1_500_000 },
  async () => {
    // A slow poll far beyond the test's patience: until the last step, only Pulse can make agents act in time.
    const c = await cluster(3, ['--poll', '600', '--renew', '2']);
    try {
      const sha = await upload(c);
      const base = await freePort();
      const all = ['n1', 'n2', 'n3'];
      const desc = (instances: number, nodes: string[]) => ({
        name: 'web',
        programs: [{ sha256: sha, args: [] }],
        instances,
        memoryMiB: 64,
        ports: [`127.0.0.1:${base}`],
        placement: { nodes },
      });
      await submit(c, desc(8, all));
      await converge(c, { instances: 8, nodes: all, base }, 'submitted');

      await submit(c, desc(6, all));
      await converge(c, { instances: 6, nodes: all, base }, 'shrunk to 6');

      // n2's agent dies; the description grows while it is gone; a new agent (same cache) catches up.
      c.nodes[1].agent!.proc.kill('SIGKILL');
      await c.nodes[1].agent!.exited;
      await submit(c, desc(8, all));
      await sleep(1000);
      await c.startAgent(c.nodes[1]);
      await converge(c, { instances: 8, nodes: all, base }, 'after an agent restart');

      // Placement excludes n2: its instances migrate live to n1 and n3.
      const before = await status(c, 'web');
      await submit(c, desc(8, ['n1', 'n3']));
      await converge(c, { instances: 8, nodes: ['n1', 'n3'], base }, 'migrated off n2');
      const after = await status(c, 'web');
      // By pull: n2's VMs served themselves, the control service passed their boot URIs on,
      // and the agents of n1 and n3 had their own cstraps pull them.
      assert.match(c.nodes[1].agent!.stderr(), /pulled by its destination/);
      const arrivals = [c.nodes[0], c.nodes[2]].map((n) => n.agent!.stderr()).join('');
      assert.match(arrivals, /arriving: its cstrap pulls it from http:\/\/\S+\/v1\/vm/);
      for (const i of before.instances.filter((x) => x.node !== 'n2'))
        assert.equal(
          after.instances.find((x) => x.index === i.index)?.jobId,
          i.jobId,
          'an instance that could stay, stayed',
        );

      // Every Pulse datagram to every agent is lost; the slow poll (3 s) still brings the change.
      for (const n of c.nodes) {
        n.agent!.proc.kill('SIGKILL');
        await n.agent!.exited;
        await c.startAgent(n, ['--poll', '3', '--renew', '2', '--pulse-loss', '100']);
      }
      await submit(c, desc(5, all));
      await converge(c, { instances: 5, nodes: all, base }, 'with every Pulse datagram lost');
    } catch (e) {
      // ROAM_DEBUG_DIR keeps every process' output for a post-mortem (the runner removes TMPDIR).
      const keep = process.env.ROAM_DEBUG_DIR;
      if (keep) fs.writeFileSync(path.join(keep, 'error.txt'), String((e as Error).stack));
      if (keep)
        for (const [i, k] of c.kids.entries())
          fs.writeFileSync(
            path.join(keep, `kid-${i}.log`),
            `${k.proc.spawnargs.join(' ')}\n${k.stderr()}${k.stdout()}`,
          );
      throw e;
    } finally {
      await c.stop();
    }
  },
);
