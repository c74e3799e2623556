import type { Command } from 'commander';
import { describeCheckpoint, formatDescription } from '../../format/index.js';
import { openCheckpoint } from '../../vm/open.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('Verify a checkpoint file and describe it: header, processes, page counts, sizes')
    .argument('<file>', 'checkpoint file (stream or image)')
    .option(
      '--key <file>',
      'key that signed the checkpoint (default: $ROAM_HOME/checkpoint.key when it exists)',
    )
    .option(
      '--allow-unsigned',
      'accept a checkpoint without a valid HMAC under your key (anyone could have written it)',
    )
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
