// Shared by the home tests: a cluster on loopback, a job running the game
// server with a published port, and game clients that check every reply.
import { startCluster, type Cluster } from '../demo/cluster.js';
import { example, HOME, tmpdir, track } from './helpers.js';

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
    onLine: process.env.ROAM_TEST_LOG ? (t, l) => console.error(`[${t}] ${l}`) : undefined,
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

export { GameClient as Client } from '../demo/game-client.js';
