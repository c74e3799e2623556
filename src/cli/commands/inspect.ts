import type { Command } from 'commander';
import { ALLOW_UNSIGNED, CHECKPOINT_KEY } from '../options.js';
import { describeCheckpoint, formatDescription } from '../../format/index.js';
import { openCheckpoint } from '../../vm/open.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('Verify a checkpoint file and describe it: header, processes, page counts, sizes')
    .argument('<file>', 'checkpoint file (stream or image)')
    .option(...CHECKPOINT_KEY)
    .option(...ALLOW_UNSIGNED)
    .option('--json', 'print JSON')
    .action(async (file: string, o: { key?: string; json?: boolean; allowUnsigned?: boolean }) => {
      const cp = await openCheckpoint(file, o.key, o.allowUnsigned === true);
      const d = describeCheckpoint(cp);
      console.log(
        o.json
          ? JSON.stringify(d, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 1)
          : formatDescription(d),
      );
    });
}
