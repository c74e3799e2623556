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
      const mod = await (compiled(hash) ?? prepare(bytes));
      // Asyncify's stack layout depends on the tool that ran it (wasm-opt or binaryen.js,
      // and their versions): a stack saved by one cannot be rewound by another's code.
      const want = state.processes.find((p) => p.module === hash && p.prepared)?.prepared;
      const have = mod.meta.asyncify?.by;
      if (want && have !== want)
        throw new CheckpointError(
          'unsupported',
          `module ${hash.slice(0, 12)} was prepared here by ${have ?? 'an older roam'}, but the VM's stacks were saved by code from ${want}; prepare it with the same tool (ROAM_WASM_OPT=off selects binaryen.js; Debian's binaryen package provides wasm-opt) and an empty cache`,
        );
      return mod;
    },
    opts,
    memories,
  );
}
