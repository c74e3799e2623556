// Sending a VM that has not run yet into a cstrap: `roam run --to`. It is a
// migration whose source never started; the cstrap cannot tell the difference.
import { defaultKeyPath, loadKey, loadOrCreateKey } from '../format/index.js';
import type { Kernel } from '../guest/kernel.js';
import { migrateVm, type MigrateResult } from '../migrate/source.js';

export async function uploadVm(
  kernel: Kernel,
  to: string,
  o: { keyFile?: string; psk?: Buffer; onPhase?: (msg: string) => void } = {},
): Promise<MigrateResult> {
  const psk =
    o.psk ?? (o.keyFile ? await loadKey(o.keyFile) : await loadOrCreateKey(defaultKeyPath()));
  // Not one instruction here: the page cleaner's turns would otherwise let slices run.
  for (const p of kernel.processes.values()) kernel.scheduler.paused.add(p.pid);
  try {
    return await migrateVm(kernel, { to, kind: 'migration', psk, onPhase: o.onPhase });
  } catch (err) {
    throw new Error(
      `upload to ${to} failed: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}. Nothing ran.`,
    );
  } finally {
    kernel.close();
  }
}
