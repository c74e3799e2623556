// How an empty VM process becomes a VM: `roam cstrap`, standalone or started by
// the node daemon. Under the daemon (a host channel) it first looks for the
// checkpoint it suspended itself to (revival after a top-up); otherwise it waits
// for a VM to arrive, runs it, and serves it.
import fs from 'node:fs';
import path from 'node:path';
import { awaitVm, resume } from './cstrap.js';
import { pullVm } from './pull.js';
import { holdWhileServing } from './boot-uri.js';
import { HostChannel, SUSPEND_FILE } from './host-channel.js';
import { EXIT_STOPPED, serveRestored } from './session.js';
import { vmExit } from './exit.js';
import { openCheckpoint } from './open.js';
import { restoreVm } from '../checkpoint/restore.js';
import { defaultKeyPath, loadKey, loadOrCreateKey, saveKey } from '../format/index.js';
import { roamHome } from '../util/home.js';
import { RoamError } from '../util/errors.js';
import { newVmId } from '../guest/kernel.js';
import { onListening } from '../guest/net.js';
import { serveControl } from './control.js';

export interface CstrapBootOptions {
  listen: { host: string; port: number };
  /** Started by roam node: key and loader pin come on stdin, the address goes out on fd 3. */
  hostChannel: boolean;
  loaderHash?: string;
  keyFile?: string;
  features: readonly string[];
  quiet: boolean;
  /** Report as JSON lines on stderr instead of text. */
  json?: boolean;
  homeVia?: string;
  /** Pull the VM from this URI (a VM serving itself) instead of listening. */
  bootUri?: string;
}

export async function bootCstrap(o: CstrapBootOptions): Promise<void> {
  const host = o.hostChannel ? new HostChannel() : undefined;
  if (host) onListening((port) => host.listening(port));
  // Started by the node daemon in the folder of a VM that suspended itself: be that VM again.
  const suspended = path.join(roamHome(), SUSPEND_FILE);
  if (host && fs.existsSync(suspended)) return revive(suspended, host);
  // The key the arriving VM will checkpoint under (the node daemon's job key, or this roam's),
  // held from now on, so that an arrival sets up its device without reading it.
  const vmKey = host
    ? host.boot.then(async (b) => {
        await saveKey(defaultKeyPath(), b.key);
        return b.key;
      })
    : await loadOrCreateKey(defaultKeyPath());
  const psk = host
    ? Promise.all([vmKey, host.boot]).then(([k, b]) => ({ psk: k, loaderHash: b.loaderHash }))
    : o.keyFile
      ? await loadKey(o.keyFile)
      : await vmKey;
  const say = (text: string, event: Record<string, unknown>): void => {
    process.stderr.write(o.json ? `${JSON.stringify(event)}\n` : `${text}\n`);
  };
  const log = (m: string): void => {
    if (!o.quiet) say(`roam: cstrap: ${m}`, { event: 'log', message: m });
  };
  let waiting: ReturnType<typeof serveWaiting> | undefined;
  const pulled =
    o.bootUri === undefined || !Buffer.isBuffer(psk)
      ? undefined
      : pullVm(o.bootUri, {
          psk,
          loaderHash: o.loaderHash,
          features: o.features,
          log,
          kernel: { onExit: vmExit },
        });
  const a = pulled
    ? await pulled
    : await awaitVm({
        listen: o.listen,
        psk,
        loaderHash: o.loaderHash,
        features: o.features,
        homeVia: o.homeVia,
        log,
        kernel: { onExit: vmExit },
        onListening: (addr) => {
          say(`roam: cstrap listening on ${addr}`, { event: 'listening', addr });
          host?.ready(addr);
          waiting = serveWaiting(addr);
        },
      });
  waiting?.close();
  host?.uploaded(); // under --netns the daemon unpublishes the upload port
  const key = await vmKey;
  holdWhileServing(a);
  // The programs first; this VM's control socket a turn later (it is not needed for the first instruction).
  resume(a);
  const rec = await serveRestored(a.kernel, a.header.vmId, host, {
    deferControl: true,
    key,
    homeChannel: a.homeChannel,
  });
  if (!o.quiet)
    say(
      `roam: vm ${rec.id} arrived from ${a.from} (${a.header.kind} of vm ${a.header.vmId}, control ${rec.socket})`,
      {
        event: 'arrived',
        id: rec.id,
        from: a.from,
        kind: a.header.kind,
        of: a.header.vmId,
        control: rec.socket,
      },
    );
}

/** While it waits, an empty cstrap is listed by `roam ps` and can be ended by `roam stop`. */
function serveWaiting(addr: string): ReturnType<typeof serveControl> {
  const id = newVmId();
  return serveControl(
    { id, program: '(empty cstrap)', args: [], kind: 'cstrap', listen: addr },
    (req) => {
      if (req.op === 'status')
        return Promise.resolve({
          event: 'status',
          id,
          pid: process.pid,
          processes: [],
          stdoutBytes: 0,
        });
      if (req.op === 'stop') {
        setTimeout(() => process.exit(EXIT_STOPPED), 50);
        return Promise.resolve({ event: 'stopped', id });
      }
      return Promise.reject(
        new RoamError('empty-cstrap', `cstrap ${id} holds no VM yet: nothing to ${req.op}`),
      );
    },
  );
}

/** Revival: resume the checkpoint this VM suspended to (renamed first, so a later exit is not taken for a new suspension). */
async function revive(file: string, host: HostChannel): Promise<void> {
  const resumed = path.join(path.dirname(file), 'resumed.ckpt');
  fs.renameSync(file, resumed);
  host.ready('resumed');
  const cp = await openCheckpoint(resumed);
  const kernel = await restoreVm(cp, { vmId: cp.header.vmId, onExit: vmExit });
  const rec = await serveRestored(kernel, cp.header.vmId, host);
  process.stderr.write(`roam: vm ${rec.id} resumed from its suspension (control ${rec.socket})\n`);
  kernel.start();
}
