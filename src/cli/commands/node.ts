// `roam node` in the CLI's help and docs/cli.md: the daemon's own option
// definitions (src/host/node-options.ts). bin/roam.js starts the daemon's entry
// for `roam node ...` and sends only `roam node --help` here, so the privileged
// process loads nothing of the CLI and this help is the daemon's real one.
import type { Command } from 'commander';
import { nodeCommand } from '../../host/node-options.js';
import { RoamError } from '../../util/errors.js';
import { examples } from '../options.js';
import { defineDrain } from './drain.js';

export function register(program: Command): void {
  const node = nodeCommand('node');
  node.copyInheritedSettings(program);
  // Here the options are only shown: commander would demand the daemon's required
  // ones of `roam node drain` too, so they are marked in the text instead.
  for (const o of node.options)
    if (o.mandatory) {
      o.mandatory = false;
      o.description += ' (required)';
    }
  program.addCommand(
    node
      .description(
        'run the node daemon (packetd on one UDP socket, the VM launcher and the meter); it runs in a process of its own',
      )
      .addHelpText(
        'after',
        `
On SIGTERM or SIGINT the daemon evicts its VMs (each gets --grace to suspend itself) and exits.
A VM's output goes to console.log in its folder under --state. The daemon prints
"node ID listening on udp://HOST:PORT" on stdout once it answers.
${examples([
  'roam node --id n1 --secret-file n1.secret --listen 127.0.0.1:7401 --state ./node-state',
  'roam node --id n1 --secret-file n1.secret --listen 0.0.0.0:7401 --vm-host 192.0.2.10 --warm 4',
])}`,
      )
      .action(() => {
        throw new RoamError(
          'node-entry',
          'roam node runs through bin/roam.js, which starts the daemon in a process of its own',
          { kind: 'usage' },
        );
      }),
  );
  defineDrain(node);
}
