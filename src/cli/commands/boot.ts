// `roam boot` sends a boot token to a node (the thesis' "magic ping"); `roam
// node` runs that node's daemon, packetd. Both halves of the same datagram
// protocol, so they live together.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { Packetd } from '../../host/packetd.js';
import { request } from '../../host/client.js';
import { parseHostPort } from '../../util/address.js';
import { intArg } from './broker.js';
import { expect, readToken } from './tokens.js';

export function readSecret(file: string): Buffer {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^([0-9a-fA-F]{2}){16,}$/.test(text)) throw new Error(`${file} must hold the node secret in hex (roam broker enroll-node prints it)`);
  return Buffer.from(text, 'hex');
}

export function register(program: Command): void {
  program.command('boot')
    .description('send a boot token to a node; prints the new VM and its cstrap address, or why the node refused')
    .argument('<token>', 'boot token file (from roam tokens buy)')
    .requiredOption('--node <host:port>', "the node daemon's UDP address")
    .option('--timeout <ms>', 'wait this long for each answer', intArg(1, 60_000), 500)
    .option('--retries <n>', 'resend this many times', intArg(0, 100), 4)
    .action(async (file: string, o: { node: string; timeout: number; retries: number }) => {
      const { raw, token } = readToken(file);
      if (raw.length > 1100) throw new Error(`${file} is too large to be a boot token`);
      const m = expect(await request(o.node, { type: 'BOOT', token: raw }, { timeoutMs: o.timeout, retries: o.retries }), 'ACCEPTED');
      process.stdout.write(`accepted: job ${m.jobId.toString('hex')} vm ${m.vmId} cstrap ${m.addr || '(none)'} balance ${m.balance} (node ${token.nodeId})\n`);
    });

  program.command('node')
    .description('run the node daemon (packetd) on one UDP socket')
    .requiredOption('--id <node>', 'this node id, as enrolled at the broker')
    .requiredOption('--secret-file <file>', 'file with the node secret (hex) from roam broker enroll-node')
    .option('--listen <addr>', 'HOST:PORT to listen on (":0" picks a free port)', '127.0.0.1:7401')
    .option('--capacity <MiB>', 'memory this node sells to VMs', intArg(1), 4096)
    .option('--price <units>', 'advertised units per second of one full CPU', intArg(0, 2 ** 32 - 1), 1)
    .action(async (o: { id: string; secretFile: string; listen: string; capacity: number; price: number }) => {
      const { host, port } = parseHostPort(o.listen, { allowPortZero: true });
      // No launcher yet: VM launch comes with the cstrap (issue 3); until then BOOT
      // verifies the token and answers no-launcher.
      const d = new Packetd({ nodeId: o.id, secret: readSecret(o.secretFile), capacityMiB: o.capacity, price: o.price, log: (m) => process.stderr.write(`packetd: ${m}\n`) });
      const a = await d.listen(port, host);
      process.stdout.write(`node ${o.id} listening on udp://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port} (no VM launcher configured)\n`);
      const stop = () => void d.close().then(() => process.exit(0));
      process.once('SIGINT', stop).once('SIGTERM', stop);
    });
}
