// `npm start`: the main demo, a cluster on loopback as real processes. A broker
// sells laundromat tokens; three node daemons start empty VMs for boot tokens; a
// customer's home submits a real WASI program (examples/game-server.wasm, C)
// with a published port, and two game clients play on it through home. The VM
// then moves itself live n1 → n2 → n3 while they play, and n3 is drained, which
// sends the VM on to another node. Per move the demo prints the source's freeze,
// the downtime and the clients' largest response gap; the clients check every
// reply, so a lost, repeated or reordered message would fail the demo.
// `npm start -- --keep` leaves the cluster up afterwards.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, submitGame, type Cluster } from './cluster.js';
import { GameClient } from './game-client.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const keep = process.argv.includes('--keep');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-demo-'));
// The customer's roam folder: its prepared-module cache is kept between runs.
const env = { ...process.env, ROAM_HOME: process.env.ROAM_HOME ?? path.join(root, '.roam') };
const say = (m: string) => console.log(`\x1b[1mdemo:\x1b[0m ${m}`);
const quiet = /"level":30|request$/;

interface Moved {
  downtimeMs?: number | null;
  freezeMs?: number;
  totalMs?: number;
}

async function move(c: Cluster, job: string, to: number, clients: GameClient[]): Promise<void> {
  const t0 = performance.now();
  const r = JSON.parse(await c.roam(['migrate', job, '--to', c.nodes[to].addr, '--json'])) as Moved;
  await new Promise((res) => setTimeout(res, 200)); // replies of the moment after
  const gap = Math.max(...clients.map((cl) => cl.maxRtt(t0)));
  say(
    `  moved to ${c.nodes[to].id}: freeze ${r.freezeMs?.toFixed(2)} ms, downtime ${r.downtimeMs?.toFixed(1)} ms, ` +
      `clients' largest response gap ${gap.toFixed(1)} ms (total ${((r.totalMs ?? 0) / 1000).toFixed(2)} s)`,
  );
}

let c: Cluster | null = null;
let code = 0;
try {
  say(
    'a broker (SQLite ledger), three node daemons enrolled with it, a customer with money, and her home',
  );
  c = await startCluster({
    dir,
    nodes: 3,
    env,
    graceS: 10,
    onLine: (tag, line) => void (quiet.test(line) ? undefined : console.log(`  [${tag}] ${line}`)),
  });
  say('submitting examples/game-server.wasm (C, wasi-libc) to n1; home publishes its port');
  say(
    '(the first run prepares the module: write barrier, safepoints, Asyncify; cached afterwards)',
  );
  const sub = await submitGame(c);
  say(`job ${sub.job} runs on n1; clients connect to home at ${sub.host}:${sub.port}`);
  const port = sub.port;
  const clients = [new GameClient(port, 1), new GameClient(port, 2)];
  // Each client sends a message every 10 ms and waits for its answer: a game's rhythm.
  const running = clients.map((cl) => cl.run(1, 10));
  await new Promise((r) => setTimeout(r, 1000));
  say(
    `two clients playing: ${clients.map((cl) => cl.got).join(' and ')} replies so far, largest gap ${Math.max(...clients.map((cl) => cl.maxRtt(0))).toFixed(1)} ms`,
  );
  for (const to of [1, 2]) {
    say(`migrating the VM live to ${c.nodes[to].id} while they play (home arbitrates the commit)`);
    await move(c, sub.job, to, clients);
  }
  say(`draining n3 (roam node drain): its VM asks home for another node and moves there`);
  const t0 = performance.now();
  await c.cli(['node', 'drain', '--state', c.nodes[2].state]);
  await new Promise((r) => setTimeout(r, 300));
  const jobs = JSON.parse(await c.roam(['jobs', '--json'])) as {
    nodeId: string;
    migrations: number;
  };
  say(
    `  n3 is gone; the VM runs on ${jobs.nodeId} (${jobs.migrations} migrations); clients' largest gap ${Math.max(...clients.map((cl) => cl.maxRtt(t0))).toFixed(1)} ms`,
  );
  for (const r of running) await r.stop();
  for (const cl of clients)
    if (cl.error || cl.closed) throw new Error(cl.error ?? `client ${cl.id}: connection closed`);
  say(
    `every reply checked: ${clients.map((cl) => cl.got).join(' + ')} messages, none lost, repeated or reordered, and no connection reset`,
  );
  if (keep) {
    say(
      `the cluster stays up (Ctrl-C ends it). Try: node bin/roam.js jobs --home-file ${c.home.file}`,
    );
    await new Promise<void>((r) => process.once('SIGINT', () => r()));
  } else {
    const stopped = JSON.parse(await c.roam(['stop', sub.job, '--json'])) as { refunded?: number };
    say(
      `job stopped; ${stopped.refunded ?? 0} unspent units refunded by the broker. Try it yourself: node bin/roam.js --help`,
    );
  }
} catch (err) {
  code = 1;
  console.error(`demo failed: ${(err as Error).message}`);
} finally {
  await c?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
