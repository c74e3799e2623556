import fs from 'node:fs';
import type { Command } from 'commander';
import { logOf } from '../detach.js';
import { listVms } from '../../vm/control.js';

export function register(program: Command): void {
  program
    .command('logs')
    .description('Print the output of a VM started with `roam run --detach` (stdout and stderr)')
    .argument('<vm>', 'VM id or unique prefix (the log stays after the VM ends)')
    .option('-f, --follow', 'keep printing what the VM writes until it ends')
    .option('--json', 'one JSON object per line of the log: {"vm":ID,"line":TEXT}')
    .addHelpText(
      'after',
      `
The log is $ROAM_HOME/logs/VM.log. A VM in the foreground writes to its terminal
instead, and a node daemon's VMs to console.log in their folder.

Example:
  VM=$(roam run --detach examples/counter.wasm 100 50)
  roam logs --follow "$VM"`,
    )
    .action(async (ref: string, o: { follow?: boolean; json?: boolean }) => {
      const file = logOf(ref);
      const id = file.slice(file.lastIndexOf('/') + 1, -'.log'.length);
      let at = 0;
      let partial = '';
      const pump = (): void => {
        const buf = fs.readFileSync(file);
        if (buf.length > at) {
          if (!o.json) process.stdout.write(buf.subarray(at));
          else {
            // Whole lines only: a line still being written waits for its end.
            const lines = (partial + buf.subarray(at).toString('utf8')).split('\n');
            partial = lines.pop() ?? '';
            for (const line of lines) process.stdout.write(`${JSON.stringify({ vm: id, line })}\n`);
          }
        }
        at = buf.length;
      };
      pump();
      const flush = (): void => {
        if (o.json && partial)
          process.stdout.write(`${JSON.stringify({ vm: id, line: partial })}\n`);
      };
      if (!o.follow) return flush();
      while (listVms().some((v) => v.id === id)) {
        await new Promise((r) => setTimeout(r, 200));
        pump();
      }
      pump();
      flush();
    });
}
