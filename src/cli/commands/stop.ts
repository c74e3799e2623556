import type { Command } from 'commander';
import { controlRequest, findVm, type StoppedEvent } from '../../vm/control.js';
import { HOME_FILE, homeCall, isJobId } from '../home-client.js';

export function register(program: Command): void {
  program
    .command('stop')
    .description(
      'End a running VM on this host: its programs stop where they are (nothing is saved)',
    )
    .argument(
      '<vm>',
      'VM id (or unique prefix, or pid), see `roam ps`; or a job id of your home (`roam jobs`)',
    )
    .option('--json', 'print the result as JSON')
    .option(...HOME_FILE)
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
    .action(async (ref: string, o: { json?: boolean; homeFile?: string }) => {
      if (isJobId(ref)) {
        const r = await homeCall<{ refunded?: number }>(
          'POST',
          `/v1/jobs/${ref}/stop`,
          {},
          o.homeFile,
        );
        if (o.json) console.log(JSON.stringify(r));
        else console.log(`stopped job ${ref}; ${r.refunded ?? 0} unspent units refunded`);
        return;
      }
      const vm = findVm(ref);
      const res = await controlRequest<StoppedEvent>(vm, { op: 'stop' });
      if (o.json) console.log(JSON.stringify(res));
      else console.log(`stopped vm ${res.id}`);
    });
}
