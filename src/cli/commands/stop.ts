import type { Command } from 'commander';
import { controlRequest, findVm, type StoppedEvent } from '../../vm/control.js';

export function register(program: Command): void {
  program
    .command('stop')
    .description(
      'End a running VM on this host: its programs stop where they are (nothing is saved)',
    )
    .argument('<vm>', 'VM id (or unique prefix, or pid), see `roam ps`')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
A checkpoint under way finishes first. To keep the VM's state, checkpoint it
before stopping it: roam checkpoint VM -o vm.ckpt && roam stop VM.
The VM's process exits with status 143, as if it had been sent SIGTERM (which
ends it the same way).

Example:
  roam stop 3f2a`,
    )
    .action(async (ref: string, o: { json?: boolean }) => {
      const vm = findVm(ref);
      const res = await controlRequest<StoppedEvent>(vm, { op: 'stop' });
      if (o.json) console.log(JSON.stringify(res));
      else console.log(`stopped vm ${res.id}`);
    });
}
