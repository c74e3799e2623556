// What `roam run`, `roam restore` and `roam cstrap` share: a running kernel in this
// process, given /dev/checkpoint, a control socket, and an exit that ends the
// process with the guest's exit code.
import fs from 'node:fs';
import path from 'node:path';
import { SUSPEND_FILE, type HostChannel } from '../boot/host-channel.js';
import { roamHome } from '../util/home.js';
import { PageCleaner } from '../checkpoint/cleaner.js';
import { CheckpointDevice } from '../checkpoint/device.js';
import { defaultKeyPath, fileTarget, loadKeySync, loadOrCreateKey } from '../format/index.js';
import { controlRequest, serveControl, type ControlEvent, type VmRecord } from '../guest/control.js';
import type { Kernel } from '../guest/kernel.js';
import { migrateVm, type MigrateOptions, type MigrateResult } from '../migrate/source.js';

/** A VM built from a checkpoint or a migration stream, served under the name of its first program. */
export function serveRestored(kernel: Kernel, restoredFrom: string, host?: HostChannel): Promise<VmRecord> {
  const first = [...kernel.processes.values()][0];
  return serveVm(kernel, { program: first?.argv[0] ?? '?', args: first?.argv.slice(1) ?? [], restoredFrom, host });
}

export async function serveVm(kernel: Kernel, info: { program: string; args: string[]; restoredFrom?: string; host?: HostChannel }): Promise<VmRecord> {
  // Synchronously when the key exists: an arrived VM gets here on its way to its first instruction.
  const key = loadKeySync(defaultKeyPath()) ?? (await loadOrCreateKey(defaultKeyPath()));
  let busy: Promise<unknown> | null = null;
  /** One checkpoint, migration or fork at a time. */
  const exclusive = async <T>(run: () => Promise<T>): Promise<T> => {
    if (busy) throw new Error('a checkpoint or migration of this VM is already under way');
    const p = run();
    busy = p.catch(() => {});
    try {
      return await p;
    } finally {
      busy = null;
    }
  };

  /** A migration committed: this copy of the VM ends (the destination runs it now). */
  const leave = (res: MigrateResult): void => {
    for (const p of kernel.processes.values()) kernel.scheduler.paused.add(p.pid);
    // Let go of sockets and listeners at once: clients see the cut now and the
    // destination can take over the ports (what was held back is dropped).
    kernel.close();
    kernel.log(`migrated to ${res.to} as vm ${res.vmId}; this copy ends`);
    // Let the control reply reach `roam migrate` before the process goes.
    setTimeout(() => {
      control.close();
      process.exit(0);
    }, 50);
  };

  const migrate = async (o: Omit<MigrateOptions, 'psk'> & { psk?: Buffer }): Promise<MigrateResult> => {
    const res = await exclusive(() => migrateVm(kernel, { ...o, psk: o.psk ?? key }));
    if (res.kind === 'migration') leave(res);
    return res;
  };

  kernel.device = new CheckpointDevice(kernel, { key, migrate: async (kind, to) => void (await migrate({ kind, to })) });
  const control = serveControl({ id: kernel.vmId, ...info }, async (req, emit): Promise<ControlEvent> => {
    switch (req.op) {
      case 'status':
        return {
          event: 'status', id: kernel.vmId, pid: process.pid,
          processes: [...kernel.processes.values()].map((p) => ({ pid: p.pid, argv: p.argv, status: p.status, exitCode: p.exitCode, memoryPages: p.status === 'exited' ? 0 : p.pageCount() })),
          stdoutBytes: kernel.stdoutBytes,
        };
      case 'checkpoint': {
        if (typeof req.path !== 'string' || !path.isAbsolute(req.path)) throw new Error('checkpoint needs an absolute output path');
        const target = fileTarget(req.path, { format: req.format === 'image' ? 'image' : 'stream', key });
        const res = await exclusive(() =>
          new PageCleaner(kernel, target, {
            maxRounds: req.maxRounds, verifyAtFreeze: req.verify === true,
            onRound: (r) => emit({ event: 'round', ...r }),
          }).run(),
        );
        return { event: 'done', path: req.path, ...res, rounds: res.rounds.length };
      }
      case 'migrate':
      case 'fork': {
        if (typeof req.to !== 'string') throw new Error(`${req.op} needs a destination HOST:PORT`);
        const res = await migrate({
          kind: req.op === 'fork' ? 'fork' : 'migration', to: req.to,
          maxDowntimeMs: req.maxDowntimeMs, maxBandwidth: req.maxBandwidth, throttle: req.throttle,
          compress: req.compress, maxRounds: req.maxRounds, verify: req.verify === true,
          psk: typeof req.key === 'string' ? Buffer.from(req.key, 'hex') : undefined,
          onRound: (r) => emit({ event: 'round', ...r }),
          onPhase: (message) => emit({ event: 'phase', message }),
        });
        return { event: 'done', ...res };
      }
      default:
        throw new Error(`unknown request "${String(req.op)}"`);
    }
  });
  // Told to go by the node daemon: suspend to disk (written aside, then renamed,
  // so that the daemon never finds half a file) and end; a top-up revives it.
  let leaving = false;
  info.host?.onNotice((reason, seconds) => {
    if (leaving) return; // already suspending (a second notice, or the daemon gone meanwhile)
    leaving = true;
    kernel.log(`notice from the host (${reason}, ${seconds} s): suspending to disk`);
    const file = path.join(roamHome(), SUSPEND_FILE);
    const suspend = async () => {
      while (busy) await busy;
      await exclusive(() => new PageCleaner(kernel, fileTarget(`${file}.tmp`, { format: 'stream', key }), {}).run());
      fs.renameSync(`${file}.tmp`, file);
    };
    suspend().then(() => process.exit(0), (err: Error) => {
      kernel.log(`suspend failed: ${err.message}`);
      process.exit(1);
    });
  });
  const prevExit = kernel.opts.onExit;
  kernel.opts.onExit = async (code) => {
    // A checkpoint under way is finished first: its requester is waiting for it.
    while (busy) await busy;
    control.close();
    prevExit?.(code);
  };
  return control.record;
}

export { controlRequest };
