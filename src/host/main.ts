// `roam node`: the node daemon's own entry. bin/roam.js starts it without loading
// the rest of roam, so this process holds only src/host and src/tokens (the
// lines `npm run tcb` counts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessLauncher, vmReadable } from './launcher.js';
import { Packetd } from './packetd.js';
import { JobStore } from './store.js';
import { netnsProblem, netnsSetup } from './netns.js';
import { int, nodeCommand, type NodeOptions } from './node-options.js';

await nodeCommand('roam node')
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
