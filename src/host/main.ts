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
import { int, parseNodeArgs, type NodeOptions } from './node-options.js';

const log = (m: string) => process.stderr.write(`roam node: ${m}\n`);

// What isolates VMs here, said at start-up: what is isolated and how, what is not and why.
function isolation(o: NodeOptions, root: boolean): { cg?: Cgroups; tag?: string } {
  const found = !root ? 'not root' : o.cgroups === false ? '--no-cgroups' : Cgroups.find(),
    cg = typeof found === 'object' ? found : undefined;
  const why = root && o.netns && netnsProblem(o.vmHost);
  if (why) throw new Error(why);
  const tag = root && o.netns ? netTag(o.state) : undefined,
    no = (flag: string) => (root ? `no ${flag}` : 'not root');
  const parts: [boolean, string, string][] = [
    [
      !!tag,
      'the network (each VM in a namespace of its own, ports enforced)',
      `the network (${no('--netns')}): VMs reach loopback services and each other, no port limit`,
    ],
    [
      !!cg,
      `memory, CPU share, tasks (cgroup v${cg?.version})`,
      `cgroups (${typeof found === 'string' ? found : ''}): memory only by the RSS check, CPU share not at all`,
    ],
    [root && o.vmUid !== undefined, 'uids (each VM its own)', `uids (${no('--vm-uid')})`],
  ];
  const on = parts.filter((p) => p[0]).map((p) => p[1]),
    off = parts.filter((p) => !p[0]).map((p) => p[2]);
  log(`isolated: ${on.join('; ') || 'files only (the permission model)'}`);
  if (off.length) log(`NOT ISOLATED: ${off.join('; ')}`);
  return { cg, tag };
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
  // The tunables (capacity, price, grace, topupBudget, ...) by the names the flags have.
  const d = new Packetd({
    ...o,
    nodeId: o.id,
    secret: Buffer.from(secret, 'hex'),
    store,
    saved,
    recover: launcher.recover,
    launcher: launcher.launch,
    log,
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

await Promise.resolve()
  .then(() => run(parseNodeArgs(process.argv.slice(2))))
  .catch((e: Error) => {
    process.stderr.write(`roam node: ${e.message}\n`);
    process.exit(1);
  });
