// What `roam run` and `roam restore` share: a running kernel in this process,
// given /dev/checkpoint, a control socket, and an exit that ends the process with
// the guest's exit code.
import path from 'node:path';
import { PageCleaner } from '../checkpoint/cleaner.js';
import { CheckpointDevice } from '../checkpoint/device.js';
import { defaultKeyPath, fileTarget, loadOrCreateKey } from '../format/index.js';
import { controlRequest, serveControl, type ControlEvent, type VmRecord } from '../guest/control.js';
import type { Kernel } from '../guest/kernel.js';

export async function serveVm(kernel: Kernel, info: { program: string; args: string[]; restoredFrom?: string }): Promise<VmRecord> {
  const key = await loadOrCreateKey(defaultKeyPath());
  kernel.device = new CheckpointDevice(kernel, { key });
  let busy: Promise<unknown> | null = null;
  const control = serveControl({ id: kernel.vmId, ...info }, async (req, emit): Promise<ControlEvent> => {
    switch (req.op) {
      case 'status':
        return {
          event: 'status', id: kernel.vmId, pid: process.pid,
          processes: [...kernel.processes.values()].map((p) => ({ pid: p.pid, argv: p.argv, status: p.status, exitCode: p.exitCode, memoryPages: p.status === 'exited' ? 0 : p.pageCount() })),
          stdoutBytes: kernel.stdoutBytes,
        };
      case 'checkpoint': {
        if (busy) throw new Error('a checkpoint of this VM is already under way');
        if (typeof req.path !== 'string' || !path.isAbsolute(req.path)) throw new Error('checkpoint needs an absolute output path');
        const target = fileTarget(req.path, { format: req.format === 'image' ? 'image' : 'stream', key });
        const cleaner = new PageCleaner(kernel, target, {
          maxRounds: req.maxRounds, verifyAtFreeze: req.verify === true,
          onRound: (r) => emit({ event: 'round', ...r }),
        });
        const run = cleaner.run();
        busy = run.catch(() => {});
        try {
          const res = await run;
          return { event: 'done', path: req.path, ...res, rounds: res.rounds.length };
        } finally {
          busy = null;
        }
      }
      default:
        throw new Error(`unknown request "${String(req.op)}"`);
    }
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
