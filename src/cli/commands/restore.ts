import type { Command } from 'commander';
import { ALLOW_UNSIGNED, CHECKPOINT_KEY } from '../options.js';
import { restoreFile } from '../../checkpoint/restore-file.js';
import { newVmId } from '../../guest/kernel.js';
import { serveRestored } from '../../vm/session.js';
import { vmExit } from '../../vm/exit.js';
import { checkpointReadOptions } from '../../vm/open.js';

export function register(program: Command): void {
  program
    .command('restore')
    .description(
      'Resume a VM from a checkpoint file (stream or image) in this process, in the foreground',
    )
    .argument(
      '<file>',
      'a checkpoint written by `roam checkpoint` or by a program through /dev/checkpoint',
    )
    .option(...CHECKPOINT_KEY)
    .option(...ALLOW_UNSIGNED)
    .option('--quiet', 'do not print the VM id on stderr')
    .option(
      '--json',
      'report on stderr as JSON lines ({"event":"restored",...}); stdout stays the program\'s',
    )
    .addHelpText(
      'after',
      '\nThe whole file is read and verified before anything runs: a truncated, corrupted or tampered file is refused.',
    )
    .action(
      async (
        file: string,
        o: { key?: string; quiet?: boolean; json?: boolean; allowUnsigned?: boolean },
      ) => {
        // An image's pages go straight into the programs' memories (restoreFile).
        const read = await checkpointReadOptions(file, o.key, o.allowUnsigned === true);
        const { kernel, checkpoint: cp } = await restoreFile(file, read, {
          vmId: newVmId(),
          onExit: vmExit,
        });
        const rec = await serveRestored(kernel, cp.header.vmId);
        if (o.json)
          process.stderr.write(
            `${JSON.stringify({ event: 'restored', id: rec.id, pid: rec.pid, from: file, checkpointOf: cp.header.vmId, control: rec.socket })}\n`,
          );
        else if (!o.quiet)
          process.stderr.write(
            `roam: vm ${rec.id} restored from ${file} (checkpoint of vm ${cp.header.vmId}, control ${rec.socket})\n`,
          );
        kernel.start();
      },
    );
}
