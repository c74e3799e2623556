import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { controlRequest, findVm, type CheckpointDone, type RoundEvent } from '../../vm/control.js';
import { choice, examples, mib, positiveInt } from '../options.js';
import { Progress } from '../progress.js';

interface CheckpointOptions {
  output: string;
  format: 'stream' | 'image';
  maxRounds: number;
  verify?: boolean;
  json?: boolean;
}

export const roundLine = (e: RoundEvent): string =>
  `round ${e.round}: sent ${e.sent} pages (${mib(e.bytes)}) in ${e.ms.toFixed(0)} ms, postponed ${e.postponed}, WSS ${e.wss} / buffer ${e.buffer}`;

/** An image is sparse: say so before someone copies what `ls -l` calls GiBs. */
function sparseNote(file: string): void {
  const st = fs.statSync(file);
  process.stderr.write(
    `roam: ${file} is a sparse file: ls -l shows ${mib(st.size)}, it takes ${mib(st.blocks * 512)} on disk; copy it with cp --sparse=always or tar -S\n`,
  );
}

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
      choice(['stream', 'image'] as const),
      'stream',
    )
    .option('--max-rounds <n>', 'pre-copy rounds before freezing anyway', positiveInt, 30)
    .option(
      '--verify',
      'at the freeze, hash all memory and check the pre-copied pages against it (slower freeze; for testing)',
    )
    .option(
      '--json',
      'print the result as one JSON object on stdout, and each round as a JSON line on stderr',
    )
    .addHelpText(
      'after',
      `
On a terminal a line is redrawn while a round runs (pages, MiB/s, pages/s, WSS, ETA).
${examples([
  'roam checkpoint 3f2a -o vm.ckpt',
  'roam checkpoint 3f2a -o vm.img --format image   # sparse: ls -l shows GiBs, du the real size',
  'roam checkpoint 3f2a -o vm.ckpt --json',
])}`,
    )
    .action(async (ref: string, o: CheckpointOptions) => {
      const vm = findVm(ref);
      const out = path.resolve(o.output);
      const shown = new Progress();
      const res = await controlRequest<CheckpointDone>(
        vm,
        {
          op: 'checkpoint',
          path: out,
          format: o.format,
          maxRounds: o.maxRounds,
          verify: !!o.verify,
        },
        (e) => {
          // Under --json the rounds go to stderr as JSON lines; stdout keeps the one result.
          if (o.json) {
            if (e.event !== 'progress') process.stderr.write(`${JSON.stringify(e)}\n`);
          } else if (e.event === 'progress') shown.tick(e);
          else if (e.event === 'round') {
            shown.wss = e.wss;
            shown.line(roundLine(e));
          } else shown.line(e.message);
        },
      );
      if (o.json) console.log(JSON.stringify(res));
      else {
        console.log(
          `checkpoint of VM ${vm.id} written to ${out}: ${mib(res.bytes)}, ${res.rounds} rounds, ${res.pagesSent} pages, freeze ${res.downtimeMs.toFixed(2)} ms, total ${(res.totalMs / 1000).toFixed(2)} s`,
        );
        if (o.format === 'image') sparseNote(out);
      }
    });
}
