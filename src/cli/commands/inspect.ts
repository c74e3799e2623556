import fs from 'node:fs';
import type { Command } from 'commander';
import { defaultKeyPath, describeCheckpoint, formatDescription, loadKey, readCheckpoint } from '../../format/index.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('Verify a checkpoint file and describe it: header, processes, page counts, sizes')
    .argument('<file>', 'checkpoint file (stream or image)')
    .option('--key <file>', 'key that signed the checkpoint (default: $ROAM_HOME/checkpoint.key when it exists)')
    .option('--json', 'print JSON')
    .action(async (file: string, o) => {
      const keyPath = o.key ?? defaultKeyPath();
      const key = o.key || fs.existsSync(keyPath) ? await loadKey(keyPath) : undefined;
      const cp = await readCheckpoint(file, { key, allowUnsigned: !o.key });
      const d = describeCheckpoint(cp);
      console.log(o.json ? JSON.stringify(d, (_k, v) => (typeof v === 'bigint' ? String(v) : v), 1) : formatDescription(d));
    });
}
