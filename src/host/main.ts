// `roam node`: the node daemon's own entry. bin/roam.js starts it without loading
// the rest of roam, so this process holds only src/host and src/tokens (the
// lines `npm run tcb` counts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cgroups } from './cgroups.js';
import { ProcessLauncher, vmReadable } from './launcher.js';
import { Packetd } from './packetd.js';
import { JobStore } from './store.js';
import { netnsProblem, netnsSetup, netnsTeardown, netTag } from './netns.js';
import { int, nodeCommand, type NodeOptions } from './node-options.js';

const log = (m: string) => process.stderr.write(`roam node: ${m}\n`);

// What isolates VMs here, said at start-up: isolated (what, how) and not (what, and why not).
function isolation(o: NodeOptions, root: boolean): { cg?: Cgroups; tag?: string } {
  const cg = !root ? 'not root' : o.cgroups === false ? '--no-cgroups' : Cgroups.find();
  const why = root && o.netns && netnsProblem(o.vmHost);
  if (why) throw new Error(why);
  const tag = root && o.netns ? netTag(o.state) : undefined;
  const on = [
    ...(tag ? [`the network (each VM in a namespace of its own, ports enforced)`] : []),
    ...(typeof cg === 'object' ? [`memory, CPU share, tasks (cgroup v${cg.version})`] : []),
    ...(root && o.vmUid !== undefined ? ['uids (each VM its own)'] : []),
  ];
  const off = [
    ...(tag
      ? []
      : [
          `the network (${root ? 'no --netns' : 'not root'}): VMs reach loopback services and each other, no port limit`,
        ]),
    ...(typeof cg === 'string'
      ? [`cgroups (${cg}): memory only by the RSS check, CPU share not at all`]
      : []),
    ...(root && o.vmUid !== undefined ? [] : [`uids (${root ? 'no --vm-uid' : 'not root'})`]),
  ];
  log(`isolated: ${on.join('; ') || 'files only (the permission model)'}`);
  if (off.length) log(`NOT ISOLATED: ${off.join('; ')}`);
  return { cg: typeof cg === 'object' ? cg : undefined, tag };
}

async function run(o: NodeOptions): Promise<void> {
  for (const [flag, file] of [
    ['--secret-file', o.secretFile],
    ['--state', o.state],
  ])
    if (vmReadable(file))
      throw new Error(`${flag} ${file} is inside the roam code, which every VM may read: move it`);
  const { cg, tag } = isolation(o, process.getuid?.() === 0);
  const secret = readFileSync(o.secretFile, 'utf8').trim();
  if (!/^([0-9a-f]{2}){16,}$/i.test(secret))
    throw new Error(`${o.secretFile} must hold the node secret in hex (roam broker enroll-node)`);
  // The job table lives beside the VM folders, out of every VM's reach (0711: no listing).
  mkdirSync(o.state, { recursive: true, mode: 0o711 });
  const store = new JobStore(join(o.state, 'jobs.log')),
    saved = store.load();
  const keep = new Set([...saved.values()].flatMap((r) => (r.vmId ? [r.vmId] : [])));
  if (tag) netnsSetup(tag, keep);
  if (tag) log(`network: table ip roam_${tag}, namespaces roam-${tag}-VMID`);
  const launcher = new ProcessLauncher(
    { stateDir: o.state, host: o.vmHost, warm: o.warm, uid: o.vmUid, log, cgroups: cg, netns: tag },
    keep,
  );
  const d = new Packetd({
    ...{ store, saved, recover: launcher.recover, launcher: launcher.launch, log },
    ...{ nodeId: o.id, secret: Buffer.from(secret, 'hex'), capacityMiB: o.capacity },
    ...{ price: o.price, memPrice: o.memPrice, graceS: o.grace, retentionS: o.retention },
    ...{ hashBudget: o.topupBudget, overheadMiB: o.vmOverhead, reserveMiB: o.vmReserve },
  });
  const at = o.listen.lastIndexOf(':');
  const a = await d.listen(
    int(o.listen.slice(at + 1)),
    o.listen.slice(0, at).replace(/^\[(.*)\]$/, '$1'),
  );
  const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  process.stdout.write(`node ${o.id} listening on udp://${shown}:${a.port}\n`);
  writeFileSync(join(o.state, 'node.pid'), `${process.pid}\n`); // for roam node drain
  const meter = setInterval(() => d.tick(1), 1000);
  const stop = () => {
    // the meter purges what is still there after the grace; warm VMs end with this process
    log(`evicting ${d.evict(o.grace)} VM(s)`);
    setInterval(() => {
      if (d.busy()) return;
      clearInterval(meter);
      void d.close().then(() => {
        if (tag) netnsTeardown(tag);
        process.exit(0);
      });
    }, 100);
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
}

await nodeCommand('roam node')
  .action(run)
  .parseAsync()
  .catch((e: Error) => {
    process.stderr.write(`roam node: ${e.message}\n`);
    process.exit(1);
  });
