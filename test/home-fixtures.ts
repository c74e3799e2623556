// Shared by the home tests: a cluster on loopback, a job running the game
// server with a published port, and game clients that check every reply.
import net from 'node:net';
import readline from 'node:readline';
import { startCluster, type Cluster } from '../demo/cluster.js';
import { example, HOME, sleep, tmpdir, track, until } from './helpers.js';

export const T = { timeout: 240_000 };

export async function cluster(
  nodes: number,
  homeArgs: string[] = [],
  graceS = 10,
): Promise<Cluster> {
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

export async function submit(
  c: Cluster,
  node = 0,
  extra: string[] = [],
): Promise<{ job: string; port: number }> {
  const out = await c.roam([
    'submit',
    '--json',
    '--node',
    c.nodes[node].addr,
    '--publish',
    '127.0.0.1:0:7000',
    ...extra,
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
export class Client {
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
