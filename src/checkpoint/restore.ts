// Resuming a VM from a checkpoint (either format), in this process.
import { CheckpointError, type Checkpoint } from '../format/index.js';
import { Kernel, type KernelOptions, type KernelState } from '../guest/kernel.js';
import { prepare, type PreparedModule } from '../wasm/prepare.js';
import { missingFeatures } from '../memory/features.js';

/** @param compiled modules already being prepared (a migration compiles them while pages arrive) */
export async function restoreVm(
  cp: Checkpoint,
  opts: Omit<KernelOptions, 'dirs' | 'tcplisten'>,
  compiled: (hash: string) => Promise<PreparedModule> | undefined = () => undefined,
  memories: (slot: number) => WebAssembly.Memory | undefined = () => undefined,
): Promise<Kernel> {
  const missing = missingFeatures(cp.header.features);
  if (missing.length)
    throw new CheckpointError(
      'unsupported',
      `this host lacks WASM feature(s) the VM needs: ${missing.join(', ')}`,
    );
  let state: KernelState;
  try {
    state = JSON.parse(cp.kernel.toString('utf8')) as KernelState;
  } catch {
    throw new CheckpointError('corrupted', 'the kernel state in the checkpoint is not valid JSON');
  }
  const empty = new Map<number, Buffer>();
  return Kernel.restore(
    state,
    (slot) => cp.spaces.get(slot) ?? empty,
    async (hash) => {
      const bytes = cp.modules.get(hash);
      if (!bytes)
        throw new CheckpointError(
          'corrupted',
          `the checkpoint lacks module ${hash.slice(0, 12)} that process state refers to`,
        );
      return compiled(hash) ?? prepare(bytes);
    },
    opts,
    memories,
  );
}
