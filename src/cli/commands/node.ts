// `roam node` in the CLI's help and docs/cli.md: the daemon's own flags and
// defaults (src/host/node-options.ts) with the descriptions, which only the help
// needs. bin/roam.js starts the daemon's entry for `roam node ...` and sends only
// `roam node --help` here, so the privileged process loads nothing of the CLI
// (nor commander, nor this text) and this help lists what the daemon accepts.
import { Command, Option } from 'commander';
import { int, mib, NODE_FLAGS, secs } from '../../host/node-options.js';
import { RoamError } from '../../util/errors.js';
import { examples } from '../options.js';
import { defineDrain } from './drain.js';

// Each of the daemon's flags: its value's name in the help, and what it does.
const HELP: Record<keyof typeof NODE_FLAGS, [string, string]> = {
  id: ['node', 'this node id, as enrolled at the broker'],
  'secret-file': ['file', 'file with the node secret (hex) from roam broker enroll-node'],
  listen: ['host:port', 'UDP address to listen on (port 0 picks one)'],
  capacity: ['MiB', 'memory this node sells to VMs'],
  price: ['units', 'units per CPU-second a VM uses (advertised in PONG)'],
  'mem-price': ['units', 'units per GiB-second of resident memory'],
  state: ['dir', 'folder for the VMs, one folder each'],
  'vm-host': ['addr', 'address the cstraps accept uploads on'],
  warm: ['n', 'empty VMs kept ready for boot tokens'],
  grace: ['s', 'time a VM has to suspend itself after a notice'],
  retention: ['s', 'time a suspended VM waits on disk for a top-up'],
  'topup-budget': ['hashes', 'chain hashes one source may cost per second'],
  'vm-overhead': ['MiB', 'resident memory a VM may use beyond its token (Node)'],
  'vm-reserve': ['MiB', 'capacity each VM holds beyond its token memory'],
  cgroups: [
    '',
    'as root, the default where cgroupfs (v2, or v1) is writable: each VM in cgroups (memory: token + 160 MiB, cpu: cpuShare, pids 64)',
  ],
  'no-cgroups': ['', 'no cgroups, even as root'],
  netns: [
    '',
    "as root: each VM in a network namespace of its own (needs ip, nft, nsenter, setpriv): it reaches the outside, never the host or another VM; on --vm-host only its upload port (until it has arrived) and at most its token's ports are published",
  ],
  'vm-uid': [
    'uid',
    'as root: run VM n as uid and gid <uid>+n (they must be able to read the roam folder)',
  ],
};
const READ = { int, mib, secs };

/** The daemon's command as the help shows it: its flags with their defaults, no action. */
export function nodeCommand(name: string): Command {
  const c = new Command(name);
  for (const [flag, [how, dflt]] of Object.entries(NODE_FLAGS) as [
    keyof typeof NODE_FLAGS,
    readonly [string, string?],
  ][]) {
    const [value, text] = HELP[flag],
      spec = `--${flag}${value ? ` <${value}>` : ''}`;
    const shown = dflt === undefined || how === 'str' ? dflt : READ[how as keyof typeof READ](dflt);
    if (flag === 'id' || flag === 'secret-file') c.requiredOption(spec, text);
    else c.addOption(new Option(spec, text).default(shown));
  }
  return c;
}

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
