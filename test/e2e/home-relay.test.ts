// Home end to end: a broker, node daemons and a home as real processes; a job
// submitted with a published port; real TCP clients that keep talking while the
// VM migrates between nodes, while the VM's session with home is cut, and while
// a client connects during a move. Every client checks each reply against the
// checksum it computes itself: no message lost, applied twice or reordered, and
// its connection never reset.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, until } from '../helpers.js';
import { proxy } from '../migrate-fixtures.js';
import { Client, cluster, submit, T } from '../home-fixtures.js';

test(
  'clients keep their connections, every byte once and in order, across migrations n1 → n2 → n1 → n2',
  T,
  async () => {
    const c = await cluster(2);
    try {
      const { job, port } = await submit(c);
      const a = new Client(port, 1);
      const b = new Client(port, 2);
      const ra = a.run();
      const rb = b.run(1);
      await until(() => a.got > 20, 'first replies');
      for (const to of [1, 0, 1]) {
        const r = JSON.parse(
          await c.roam(['migrate', job, '--to', c.nodes[to].addr, '--json']),
        ) as { downtimeMs: number };
        assert.ok(
          typeof r.downtimeMs === 'number',
          'the destination reported its first instruction',
        );
        const before = a.got;
        await until(() => a.got > before + 20 || !!a.error, 'replies after the migration');
      }
      await ra.stop();
      await rb.stop();
      assert.equal(a.error, null);
      assert.equal(b.error, null);
      assert.ok(!a.closed && !b.closed, 'no connection was closed');
      const jobs = (await c.roam(['jobs', '--json']))
        .split('\n')
        .map((l) => JSON.parse(l) as { nodeId: string; migrations: number; clients: number });
      assert.equal(jobs[0].nodeId, 'n2');
      assert.equal(jobs[0].migrations, 3);
      assert.equal(jobs[0].clients, 2);
    } finally {
      await c.stop();
    }
  },
);

test('cutting the VM’s session with home again and again loses no client byte', T, async () => {
  const listen = await freePort();
  const p = await proxy(`127.0.0.1:${listen}`, undefined, true);
  const c = await cluster(1, ['--listen', `127.0.0.1:${listen}`, '--advertise', p.addr]);
  try {
    const { port } = await submit(c);
    const a = new Client(port, 1);
    const ra = a.run(8);
    await until(() => a.got > 10, 'first replies');
    for (let i = 0; i < 10; i++) {
      const before = a.got;
      p.cutAll();
      await until(() => a.got > before + 10 || !!a.error, `replies after cut ${i + 1}`);
    }
    await ra.stop();
    assert.equal(a.error, null);
    assert.ok(!a.closed);
    assert.ok(p.cuts >= 10, `the proxy cut ${p.cuts} connections`);
  } finally {
    p.close();
    await c.stop();
  }
});

test(
  'session frames dropped, duplicated or corrupted on the way: the channel refuses them, the VM calls again, no client byte is lost',
  T,
  async () => {
    const listen = await freePort();
    let n = 0;
    const faults = { drop: 0, dup: 0, flip: 0 };
    const p = await proxy(
      `127.0.0.1:${listen}`,
      (_dir, i, f) => {
        if (i < 2 || ++n % 37 !== 0) return f;
        const k = (['drop', 'dup', 'flip'] as const)[n % 3];
        faults[k]++;
        if (k === 'drop') return [];
        if (k === 'dup') return [f, f];
        const g = Buffer.from(f);
        g[g.length - 1] ^= 1;
        return g;
      },
      true,
    );
    const c = await cluster(1, ['--listen', `127.0.0.1:${listen}`, '--advertise', p.addr]);
    try {
      const { port } = await submit(c);
      const a = new Client(port, 1);
      const ra = a.run(8);
      await until(
        () => (faults.drop > 2 && faults.dup > 2 && faults.flip > 2) || !!a.error,
        'faults of each kind',
        120_000,
      );
      const before = a.got;
      await until(() => a.got > before + 20 || !!a.error, 'replies after the last fault');
      await ra.stop();
      assert.equal(a.error, null);
      assert.ok(!a.closed);
    } finally {
      p.close();
      await c.stop();
    }
  },
);

test(
  'a client that connects while the VM moves is served by the destination; one that leaves is closed there',
  T,
  async () => {
    const c = await cluster(2);
    try {
      const { job, port } = await submit(c);
      const a = new Client(port, 1);
      const ra = a.run();
      await until(() => a.got > 5, 'first replies');
      const moving = c.roam(['migrate', job, '--to', c.nodes[1].addr]);
      const late = new Client(port, 3);
      const rl = late.run(2);
      await moving;
      await until(() => late.got > 10 || !!late.error, 'the late client served');
      await rl.stop();
      late.sock.end();
      await until(() => late.closed, 'the late client closed');
      await ra.stop();
      assert.equal(a.error, null);
      assert.equal(late.error, null);
    } finally {
      await c.stop();
    }
  },
);

test(
  'home killed and restarted: its clients reconnect, the VM calls home again, and new clients are served',
  T,
  async () => {
    const listen = await freePort();
    const c = await cluster(1, ['--listen', `127.0.0.1:${listen}`]);
    try {
      const { job, port } = await submit(c);
      const a = new Client(port, 1);
      const ra = a.run();
      await until(() => a.got > 10, 'first replies');
      await c.restartHome();
      await until(() => a.closed, 'the old client to see home go');
      await ra.stop().catch(() => undefined);
      await until(() => /session up/.test(c.logs('home')), 'the VM to call home again', 30_000);
      const b = new Client(port, 2);
      const rb = b.run();
      await until(() => b.got > 20 || !!b.error, 'a new client served on the same public port');
      await rb.stop();
      assert.equal(b.error, null);
      const j = JSON.parse(await c.roam(['jobs', '--json'])) as { job: string; attached: boolean };
      assert.equal(j.job, job);
      assert.equal(j.attached, true);
    } finally {
      await c.stop();
    }
  },
);
