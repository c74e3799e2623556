// Sending a VM that has not run yet into a cstrap: `roam run --to`. It is a
// migration whose source never started; the cstrap cannot tell the difference.
// Or writing it down as a boot image (`roam run --pack`): a signed checkpoint of
// the VM before its first instruction, which cstraps pull and boot (image-pull.ts).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { defaultKeyPath, fileTarget, loadKey, loadOrCreateKey } from '../format/index.js';
import type { Kernel } from '../guest/kernel.js';
import { migrateVm, type MigrateResult } from '../migrate/source.js';
import { PageCleaner } from '../checkpoint/cleaner.js';

const keyFor = (keyFile?: string): Promise<Buffer> =>
  keyFile ? loadKey(keyFile) : loadOrCreateKey(defaultKeyPath());

/** Not one instruction here: the page cleaner's turns would otherwise let slices run. */
function hold(kernel: Kernel): void {
  for (const p of kernel.processes.values()) kernel.scheduler.paused.add(p.pid);
}

export async function uploadVm(
  kernel: Kernel,
  to: string,
  o: { keyFile?: string; psk?: Buffer; onPhase?: (msg: string) => void } = {},
): Promise<MigrateResult> {
  const psk = o.psk ?? (await keyFor(o.keyFile));
  hold(kernel);
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

/** Write the never-started VM to `file` as a boot image signed with the key; its size and SHA-256. */
export async function packVm(
  kernel: Kernel,
  file: string,
  o: { keyFile?: string } = {},
): Promise<{ bytes: number; sha256: string }> {
  const key = await keyFor(o.keyFile);
  hold(kernel);
  try {
    await new PageCleaner(kernel, fileTarget(file, { format: 'stream', key }), {}).run();
  } finally {
    kernel.close();
  }
  const bytes = fs.readFileSync(file);
  return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}
