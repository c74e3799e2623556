import type { Command } from 'commander';

/** A subcommand module: it registers its command(s) on the program. */
export interface CommandModule {
  register(program: Command): void;
}

/**
 * Every subcommand, by the names it registers, loaded on demand: `roam run`
 * imports only run.ts (and what it needs), so start-up does not pay for the
 * broker's SQLite, the control plane's PostgreSQL client or the viewer. Help and
 * docs load them all. Add new ones here.
 */
export const COMMANDS: ReadonlyArray<{ names: string[]; load: () => Promise<CommandModule> }> = [
  { names: ['run'], load: () => import('./run.js') },
  { names: ['checkpoint'], load: () => import('./checkpoint.js') },
  { names: ['restore'], load: () => import('./restore.js') },
  { names: ['inspect'], load: () => import('./inspect.js') },
  { names: ['ps'], load: () => import('./ps.js') },
  { names: ['broker'], load: () => import('./broker.js') },
  { names: ['tokens'], load: () => import('./tokens.js') },
  { names: ['boot'], load: () => import('./boot.js') },
  { names: ['node'], load: () => import('./node.js') },
  { names: ['cstrap'], load: () => import('./cstrap.js') },
  { names: ['migrate', 'fork'], load: () => import('./migrate.js') },
  { names: ['view'], load: () => import('./view.js') },
  { names: ['stop'], load: () => import('./stop.js') },
  { names: ['logs'], load: () => import('./logs.js') },
  { names: ['home'], load: () => import('./home.js') },
  { names: ['submit', 'jobs'], load: () => import('./submit.js') },
  { names: ['pulse'], load: () => import('./pulse.js') },
  { names: ['control'], load: () => import('./control.js') },
  { names: ['agent'], load: () => import('./agent.js') },
  { names: ['serve-image'], load: () => import('./serve-image.js') },
  { names: ['boot-hypercube'], load: () => import('./boot-hypercube.js') },
];
