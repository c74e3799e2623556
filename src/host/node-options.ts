// The node daemon's command line, apart from what it does: src/host/main.ts runs
// it, and the CLI shows the same definitions in `roam help node` and docs/cli.md,
// so the privileged process never loads the CLI and its help cannot drift. The
// help's prose is the CLI's (src/cli/commands/node.ts): bin/roam.js sends --help there.
import { Command, InvalidArgumentError } from 'commander';

export const int = (v: string): number => {
  if (/^\d+$/.test(v)) return Number(v);
  throw new InvalidArgumentError('expected a whole number.');
};

// Sizes and durations in the CLI's forms (src/util/quantity.ts), for the units a node uses.
const unitArg = (units: Record<string, number>, what: string) => (v: string) => {
  const m = /^(\d+)\s*([a-z]*)$/.exec(v.trim().toLowerCase());
  if (m && Object.hasOwn(units, m[2])) return Number(m[1]) * units[m[2]];
  throw new InvalidArgumentError(`expected ${what}.`);
};
export const mib = unitArg({ '': 1, m: 1, g: 1024 }, 'MiB: a number, or with M or G (4096, 4G)');
export const secs = unitArg({ '': 1, s: 1, min: 60, h: 3600 }, 'seconds: a number, or s, min, h');

export interface NodeOptions {
  id: string;
  secretFile: string;
  listen: string;
  capacity: number;
  price: number;
  memPrice: number;
  state: string;
  vmHost: string;
  warm: number;
  grace: number;
  retention: number;
  topupBudget: number;
  vmOverhead: number;
  vmReserve: number;
  cgroups?: boolean;
  netns?: boolean;
  vmUid?: number;
}

/** The daemon's command: options and help, no action (main.ts adds it). */
export const nodeCommand = (name: string): Command =>
  new Command(name)
    .description('run the node daemon: packetd on one UDP socket, the VM launcher and the meter')
    .requiredOption('--id <node>', 'this node id, as enrolled at the broker')
    .requiredOption(
      '--secret-file <file>',
      'file with the node secret (hex) from roam broker enroll-node',
    )
    .option('--listen <host:port>', 'UDP address to listen on (port 0 picks one)', '127.0.0.1:7401')
    .option('--capacity <MiB>', 'memory this node sells to VMs', mib, 4096)
    .option('--price <units>', 'units per CPU-second a VM uses (advertised in PONG)', int, 1)
    .option('--mem-price <units>', 'units per GiB-second of resident memory', int, 1)
    .option('--state <dir>', 'folder for the VMs, one folder each', '/tmp/roam-node')
    .option('--vm-host <addr>', 'address the cstraps accept uploads on', '127.0.0.1')
    .option('--warm <n>', 'empty VMs kept ready for boot tokens', int, 2)
    .option('--grace <s>', 'time a VM has to suspend itself after a notice', secs, 10)
    .option('--retention <s>', 'time a suspended VM waits on disk for a top-up', secs, 3600)
    .option('--topup-budget <hashes>', 'chain hashes one source may cost per second', int, 40000)
    .option('--vm-overhead <MiB>', 'resident memory a VM may use beyond its token (Node)', mib, 160)
    .option('--vm-reserve <MiB>', 'capacity each VM holds beyond its token memory', mib, 64)
    .option(
      '--cgroups',
      'as root, the default where cgroupfs (v2, or v1) is writable: each VM in cgroups (memory: token + 160 MiB, cpu: cpuShare, pids 64)',
    )
    .option('--no-cgroups', 'no cgroups, even as root')
    .option(
      '--netns',
      "as root: each VM in a network namespace of its own (needs ip, nft, nsenter, setpriv): it reaches the outside, never the host or another VM; on --vm-host only its upload port (until it has arrived) and at most its token's ports are published",
    )
    .option(
      '--vm-uid <uid>',
      'as root: run VM n as uid and gid <uid>+n (they must be able to read the roam folder)',
      int,
    );
