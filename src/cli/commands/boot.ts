// `roam boot` sends a boot token to a node (the thesis' "magic ping").
import type { Command } from 'commander';
import { request } from '../../host/client.js';
import { parseHostPort } from '../../util/address.js';
import { duration, emit, examples, integer, JSON_FLAG } from '../options.js';
import { expect, readToken } from './tokens-udp.js';

export function register(program: Command): void {
  program
    .command('boot')
    .description(
      'send a boot token to a node; prints the new VM and its cstrap address, or why the node refused',
    )
    .argument('<token>', 'boot token file (from roam tokens buy)')
    .requiredOption('--node <host:port>', "the node daemon's UDP address")
    .option(
      '--timeout <duration>',
      'wait this long for each answer (e.g. 500ms, 2s; a bare number is ms)',
      duration('ms', { max: 60_000 }),
      500,
    )
    .option('--retries <n>', 'resend this many times', integer(0, 100), 4)
    .option('--quiet', "print only the cstrap's address (for ADDR=$(roam boot ...))")
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
The answer names the cstrap's TCP address: upload a program into it with
\`roam run --to ADDR --key TOKEN.key PROGRAM\`, or migrate a VM into it.
${examples([
  'roam boot job.token --node 127.0.0.1:7401',
  'ADDR=$(roam boot job.token --node 127.0.0.1:7401 --quiet)',
])}`,
    )
    .action(
      async (
        file: string,
        o: { node: string; timeout: number; retries: number; json?: boolean; quiet?: boolean },
      ) => {
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
        if (o.quiet && !o.json) return void process.stdout.write(`${addr}\n`);
        emit(
          o.json,
          {
            event: 'accepted',
            job: m.jobId.toString('hex'),
            vm: m.vmId,
            cstrap: addr || null,
            balance: m.balance,
            node: token.nodeId,
          },
          `accepted: job ${m.jobId.toString('hex')} vm ${m.vmId} cstrap ${addr || '(none)'} balance ${m.balance} (node ${token.nodeId})`,
        );
      },
    );
}
