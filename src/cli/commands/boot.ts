// `roam boot` sends a boot token to a node (the thesis' "magic ping"); `roam
// node` runs that node's daemon, packetd. Both halves of the same datagram
// protocol, so they live together.
import { Command } from 'commander';
import { defineDrain } from './drain.js';
import { request } from '../../host/client.js';
import { parseHostPort } from '../../util/address.js';
import { intArg } from './broker.js';
import { expect, readToken } from './tokens.js';

export function register(program: Command): void {
  program
    .command('boot')
    .description(
      'send a boot token to a node; prints the new VM and its cstrap address, or why the node refused',
    )
    .argument('<token>', 'boot token file (from roam tokens buy)')
    .requiredOption('--node <host:port>', "the node daemon's UDP address")
    .option('--timeout <ms>', 'wait this long for each answer', intArg(1, 60_000), 500)
    .option('--retries <n>', 'resend this many times', intArg(0, 100), 4)
    .action(async (file: string, o: { node: string; timeout: number; retries: number }) => {
      const { raw, token } = readToken(file);
      if (raw.length > 1100) throw new Error(`${file} is too large to be a boot token`);
      const m = expect(
        await request(
          o.node,
          { type: 'BOOT', token: raw },
          { timeoutMs: o.timeout, retries: o.retries },
        ),
        'ACCEPTED',
      );
      // A node whose cstraps listen on every interface reports 0.0.0.0 (or ::): reach it where the node was reached.
      const { host } = parseHostPort(o.node);
      const addr = m.addr.replace(
        /^(0\.0\.0\.0|\[::\]|::)(?=:\d+$)/,
        host.includes(':') ? `[${host}]` : host,
      );
      process.stdout.write(
        `accepted: job ${m.jobId.toString('hex')} vm ${m.vmId} cstrap ${addr || '(none)'} balance ${m.balance} (node ${token.nodeId})\n`,
      );
    });

  // bin/roam.js starts the daemon's own entry before this CLI loads; this entry
  // only lists it in `roam --help`.
  const node = program
    .command('node')
    .description('run the node daemon (packetd, VM launcher, meter); see roam node --help')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new Error(
        'run roam node through bin/roam.js, which starts the daemon in a process of its own',
      );
    });
  defineDrain(node);
}
