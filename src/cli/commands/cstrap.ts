import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { awaitVm, resume } from '../../boot/cstrap.js';
import { HostChannel, SUSPEND_FILE } from '../../boot/host-channel.js';
import { loaderHash } from '../../boot/loader.js';
import { WASM_FEATURES } from '../../checkpoint/cleaner.js';
import { restoreVm } from '../../checkpoint/restore.js';
import { roamHome } from '../../util/home.js';
import { defaultKeyPath, loadKey, loadOrCreateKey, saveKey } from '../../format/index.js';
import { parseHostPort } from '../../util/address.js';
import { serveRestored } from '../vm-session.js';
import { openCheckpoint, vmExit } from '../options.js';

export function register(program: Command): void {
  program
    .command('cstrap')
    .description('Run an empty VM that waits for a VM to migrate (or fork) into it, then runs that VM in this process')
    .option('--listen <addr>', 'TCP address to receive on, HOST:PORT (port 0 picks a free one)', '127.0.0.1:0')
    .option('--loader-hash <sha256>', 'accept only the loader with this SHA-256 (a boot token pins it)')
    .option('--key <file>', 'key shared with the source (default: $ROAM_HOME/checkpoint.key, created if missing)')
    .option('--wasm-features <list>', 'WASM features this host offers, comma-separated (default: all roam uses)')
    .option('--print-loader-hash', "print this roam's loader hash and exit")
    .option('--quiet', 'print only the listening address')
    .option('--host-channel', 'started by roam node: take the key and loader pin from stdin, report the address on fd 3, obey notices')
    .addHelpText('after', `
The cstrap prints "roam: cstrap listening on HOST:PORT" on stderr. A source sends
it a VM with \`roam migrate VM --to HOST:PORT\` (or \`roam fork\`). Connections that
fail the key exchange, send another loader or a corrupt stream are refused and
the cstrap keeps waiting; once a VM has arrived whole, this process runs it.`)
    .action(async (o) => {
      if (o.printLoaderHash) {
        console.log(loaderHash());
        return;
      }
      const listen = parseHostPort(o.listen, { allowPortZero: true });
      const host = o.hostChannel ? new HostChannel() : undefined;
      // Started by the node daemon in the folder of a VM that suspended itself: be that VM again.
      const suspended = path.join(roamHome(), SUSPEND_FILE);
      if (host && fs.existsSync(suspended)) return resumeSuspended(suspended, host);
      // The key the arriving VM will checkpoint under (the node daemon's job key, or this roam's),
      // held from now on, so that an arrival sets up its device without reading it.
      const vmKey = host ? host.boot.then(async (b) => { await saveKey(defaultKeyPath(), b.key); return b.key; }) : await loadOrCreateKey(defaultKeyPath());
      const psk = host ? Promise.all([vmKey, host.boot]).then(([k, b]) => ({ psk: k, loaderHash: b.loaderHash }))
        : o.key ? await loadKey(o.key) : await vmKey;
      const log = (m: string) => { if (!o.quiet) process.stderr.write(`roam: cstrap: ${m}\n`); };
      const features = o.wasmFeatures !== undefined ? String(o.wasmFeatures).split(',').map((f) => f.trim()).filter(Boolean) : WASM_FEATURES;
      const a = await awaitVm({
        listen, psk, loaderHash: o.loaderHash, features, log,
        kernel: { onExit: vmExit },
        onListening: (addr) => { process.stderr.write(`roam: cstrap listening on ${addr}\n`); host?.ready(addr); },
      });
      const key = await vmKey;
      // The programs first; this VM's control socket a turn later (it is not needed for the first instruction).
      resume(a);
      const rec = await serveRestored(a.kernel, a.header.vmId, host, { deferControl: true, key });
      if (!o.quiet) process.stderr.write(`roam: vm ${rec.id} arrived from ${a.from} (${a.header.kind} of vm ${a.header.vmId}, control ${rec.socket})\n`);
    });
}

/** Revival: resume the checkpoint this VM suspended to (renamed first, so a later exit is not taken for a new suspension). */
async function resumeSuspended(file: string, host: HostChannel): Promise<void> {
  const resumed = path.join(path.dirname(file), 'resumed.ckpt');
  fs.renameSync(file, resumed);
  host.ready('resumed');
  const cp = await openCheckpoint(resumed);
  const kernel = await restoreVm(cp, { vmId: cp.header.vmId, onExit: vmExit });
  const rec = await serveRestored(kernel, cp.header.vmId, host);
  process.stderr.write(`roam: vm ${rec.id} resumed from its suspension (control ${rec.socket})\n`);
  kernel.start();
}
