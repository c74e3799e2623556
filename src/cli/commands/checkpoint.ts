import path from 'node:path';
import type { Command } from 'commander';
import { controlRequest, findVm } from '../../vm/control.js';

export function register(program: Command): void {
  program
    .command('checkpoint')
    .description(
      'Checkpoint a running VM to a file while it keeps running (live pre-copy, brief final freeze)',
    )
    .argument('<vm>', 'VM id (or unique prefix, or pid), see `roam ps`')
    .requiredOption('-o, --output <file>', 'where to write the checkpoint')
    .option(
      '--format <fmt>',
      'stream (records, as sent over the network) or image (1:1 page layout, sparse)',
      'stream',
    )
    .option('--max-rounds <n>', 'pre-copy rounds before freezing anyway', (v) => Number(v), 30)
    .option(
      '--verify',
      'at the freeze, hash all memory and check the pre-copied pages against it (slower freeze; for testing)',
    )
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, o) => {
      if (o.format !== 'stream' && o.format !== 'image')
        throw new Error(`--format must be stream or image, not "${o.format}"`);
      const vm = findVm(ref);
      const out = path.resolve(o.output);
      const res = await controlRequest(
        vm,
        {
          op: 'checkpoint',
          path: out,
          format: o.format,
          maxRounds: o.maxRounds,
          verify: !!o.verify,
        },
        (e) => {
          if (e.event === 'round' && !o.json)
            process.stderr.write(
              `round ${e.round}: sent ${e.sent} pages (${((e.bytes as number) / 1048576).toFixed(1)} MiB) in ${(e.ms as number).toFixed(0)} ms, postponed ${e.postponed}, WSS ${e.wss} / buffer ${e.buffer}\n`,
            );
        },
      );
      if (o.json) console.log(JSON.stringify(res));
      else
        console.log(
          `checkpoint of VM ${vm.id} written to ${out}: ${((res.bytes as number) / 1048576).toFixed(1)} MiB, ${res.rounds} rounds, ${res.pagesSent} pages, freeze ${(res.downtimeMs as number).toFixed(2)} ms, total ${((res.totalMs as number) / 1000).toFixed(2)} s`,
        );
    });
}
