// Home end to end: a broker, node daemons and a home as real processes; a job
// submitted with a published port; real TCP clients that keep talking while the
// VM migrates between nodes, while the VM's session with home is cut, and while
// a node drains. Every client checks that each reply answers its own line, in
// order, with the server's counter moving by one: no byte lost, duplicated or
// reordered, and its connection never reset.
import assert from 'node:assert/strict';
import net from 'node:net';
import readline from 'node:readline';
import { test } from 'node:test';
import { startCluster, type Cluster } from '../../demo/cluster.js';
import { example, freePort, HOME, sleep, tmpdir, track, until } from '../helpers.js';
import { proxy } from '../migrate-fixtures.js';

const T = { timeout: 240_000 };

async function cluster(nodes: number, homeArgs: string[] = [], graceS = 10): Promise<Cluster> {
  return startCluster({
    dir: tmpdir('home-relay'),
    nodes,
    env: { ...process.env, ROAM_HOME: HOME },
    onSpawn: (p) => void track(p),
    graceS,
    homeArgs,
  });
}

interface Submitted {
  job: string;
  published: string[];
}

async function submit(c: Cluster, node = 0): Promise<{ job: string; port: number }> {
  const out = await c.roam([
    'submit',
    '--json',
    '--node',
    c.nodes[node].addr,
    '--publish',
    '127.0.0.1:0:7000',
    example('game-server'),
  ]);
  const s = JSON.parse(out) as Submitted;
  const addr = s.published[0].split('->')[0];
  return { job: s.job, port: Number(addr.slice(addr.lastIndexOf(':') + 1)) };
}

/** The game server's running checksum of one client id (examples/game-server.c). */
const step = (h: number, seq: number, id: number): number =>
  (Math.imul((h ^ seq) >>> 0, 16777619) ^ id) >>> 0;

/**
 * A game client: sends "ID SEQ" lines, several in flight, and checks every reply
 * against the checksum it keeps itself, so a message lost, applied twice or
 * reordered on the way shows.
 */
class Client {
  readonly sock: net.Socket;
  private sent = 0;
  got = 0;
  private h = 2166136261;
  closed = false;
  error: string | null = null;

  constructor(
    port: number,
    readonly id: number,
  ) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('error', (e) => (this.error ??= e.message));
    readline.createInterface({ input: this.sock }).on('line', (l) => this.onLine(l));
  }

  private onLine(l: string): void {
    this.h = step(this.h, this.got, this.id);
    const want = `${this.got} ${this.h.toString(16).padStart(8, '0')}`;
    if (l !== want) this.error ??= `client ${this.id}: reply ${this.got} was "${l}", not "${want}"`;
    else this.got++;
  }

  /** Keep up to `inFlight` messages unanswered until `stop()`. */
  run(inFlight = 4): { stop: () => Promise<void> } {
    let on = true;
    const loop = (async () => {
      while (on && !this.closed && !this.error) {
        while (this.sent - this.got < inFlight) this.sock.write(`${this.id} ${this.sent++}\n`);
        await sleep(2);
      }
      await until(() => this.got === this.sent || !!this.error || this.closed, 'replies', 30_000);
    })();
    return {
      stop: async () => {
        on = false;
        await loop;
      },
    };
  }
}

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
