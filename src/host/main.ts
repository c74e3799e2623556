// `roam node`: the node daemon's own entry. bin/roam.js starts it without loading
// the rest of roam, so this process holds only src/host and src/tokens (the
// lines `npm run tcb` counts).
import { Command, InvalidArgumentError } from 'commander';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessLauncher, vmReadable } from './launcher.js';
import { Packetd } from './packetd.js';
import { JobStore } from './store.js';
import { netnsProblem, netnsSetup } from './netns.js';

const int = (v: string): number => {
  if (/^\d+$/.test(v)) return Number(v);
  throw new InvalidArgumentError('expected a whole number.');
};

interface NodeOptions {
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

await new Command('roam node')
  .description('run the node daemon: packetd on one UDP socket, the VM launcher and the meter')
  .requiredOption('--id <node>', 'this node id, as enrolled at the broker')
  .requiredOption(
    '--secret-file <file>',
    'file with the node secret (hex) from roam broker enroll-node',
  )
  .option('--listen <host:port>', 'UDP address to listen on (port 0 picks one)', '127.0.0.1:7401')
  .option('--capacity <MiB>', 'memory this node sells to VMs', int, 4096)
  .option('--price <units>', 'units per CPU-second a VM uses (advertised in PONG)', int, 1)
  .option('--mem-price <units>', 'units per GiB-second of resident memory', int, 1)
  .option('--state <dir>', 'folder for the VMs, one folder each', '/tmp/roam-node')
  .option('--vm-host <addr>', 'address the cstraps accept uploads on', '127.0.0.1')
  .option('--warm <n>', 'empty VMs kept ready for boot tokens', int, 2)
  .option('--grace <s>', 'time a VM has to suspend itself after a notice', int, 10)
  .option('--retention <s>', 'time a suspended VM waits on disk for a top-up', int, 3600)
  .option('--topup-budget <hashes>', 'chain hashes one source may cost per second', int, 40000)
  .option('--vm-overhead <MiB>', 'resident memory a VM may use beyond its token (Node)', int, 160)
  .option('--vm-reserve <MiB>', 'capacity each VM holds beyond its token memory', int, 64)
  .option(
    '--cgroups',
    'as root: each VM in cgroups (memory: token + overhead, cpu: cpuShare, pids 64)',
  )
  .option(
    '--netns',
    "as root: each VM in a network namespace (ip, nft, nsenter, setpriv): it reaches the outside only; published on --vm-host: its upload port and at most its token's ports",
  )
  .option(
    '--vm-uid <uid>',
    'as root: run VM n as uid and gid <uid>+n (they must be able to read the roam folder)',
    int,
  )
  .addHelpText(
    'after',
    '\nOn SIGTERM or SIGINT the daemon evicts its VMs (each gets --grace to suspend itself) and exits.',
  )
  .action(async (o: NodeOptions) => {
    const log = (m: string) => process.stderr.write(`roam node: ${m}\n`);
    for (const [flag, file] of [
      ['--secret-file', o.secretFile],
      ['--state', o.state],
    ])
      if (vmReadable(file))
        throw new Error(
          `${flag} ${file} is inside the roam code, which every VM may read: move it`,
        );
    const root = process.getuid?.() === 0,
      cg = root && o.cgroups === true,
      ns = root && o.netns === true;
    const why = ns && netnsProblem(o.vmHost);
    if (why) throw new Error(why);
    log(
      `NOT ISOLATED: ${ns ? 'nothing of the network (each VM in its own namespace; ports enforced)' : 'VMs share the host network (no namespaces, as root: --netns): they reach loopback services and each other, and no port limit is enforced'}; ${root && o.vmUid !== undefined ? 'each VM has a uid of its own' : 'VMs run as this uid (as root: --vm-uid)'}; ${cg ? 'cgroups bound memory, CPU share and pids' : 'no cgroups (as root: --cgroups): memory is bounded by the RSS check, disk by the folder quota, CPU share not at all'}`,
    );
    const secret = readFileSync(o.secretFile, 'utf8').trim();
    if (!/^([0-9a-f]{2}){16,}$/i.test(secret))
      throw new Error(
        `${o.secretFile} must hold the node secret in hex (roam broker enroll-node writes it)`,
      );
    // The job table lives beside the VM folders, out of every VM's reach (0711: no listing).
    mkdirSync(o.state, { recursive: true, mode: 0o711 });
    const store = new JobStore(join(o.state, 'jobs.log')),
      saved = store.load();
    const keep = new Set([...saved.values()].flatMap((r) => (r.vmId ? [r.vmId] : [])));
    if (ns) netnsSetup(keep);
    const launcher = new ProcessLauncher(
      {
        stateDir: o.state,
        host: o.vmHost,
        warm: o.warm,
        uid: o.vmUid,
        log,
        cgroups: cg,
        netns: ns,
      },
      keep,
    );
    const d = new Packetd({
      store,
      saved,
      recover: launcher.recover,
      nodeId: o.id,
      secret: Buffer.from(secret, 'hex'),
      capacityMiB: o.capacity,
      price: o.price,
      memPrice: o.memPrice,
      graceS: o.grace,
      retentionS: o.retention,
      hashBudget: o.topupBudget,
      overheadMiB: o.vmOverhead,
      reserveMiB: o.vmReserve,
      launcher: launcher.launch,
      log,
    });
    const at = o.listen.lastIndexOf(':');
    const a = await d.listen(
      int(o.listen.slice(at + 1)),
      o.listen.slice(0, at).replace(/^\[(.*)\]$/, '$1'),
    );
    process.stdout.write(
      `node ${o.id} listening on udp://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}\n`,
    );
    writeFileSync(join(o.state, 'node.pid'), `${process.pid}\n`); // for roam node drain
    const meter = setInterval(() => d.tick(1), 1000);
    process.once('SIGINT', stop).once('SIGTERM', stop);
    function stop() {
      // the meter purges what is still there after the grace; warm VMs end with this process
      log(`evicting ${d.evict(o.grace)} VM(s)`);
      setInterval(() => {
        if (!d.busy()) {
          clearInterval(meter);
          void d.close().then(() => process.exit(0));
        }
      }, 100);
    }
  })
  .parseAsync()
  .catch((e: Error) => {
    process.stderr.write(`roam node: ${e.message}\n`);
    process.exit(1);
  });
