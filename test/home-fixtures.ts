// Shared by the home tests: a cluster on loopback, a job running the game
// server with a published port, and game clients that check every reply.
import { startCluster, type Cluster } from '../demo/cluster.js';
import { HOME, tmpdir, track } from './helpers.js';

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

export { submitGame as submit } from '../demo/cluster.js';

export { GameClient as Client } from '../demo/game-client.js';
