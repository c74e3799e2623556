// A VM: one guest kernel and its programs in this OS process. `roam run` and
// `roam restore` build one; the control socket and the checkpoint machinery
// attach to it.
import fs from 'node:fs';
import { RoamError } from '../util/errors.js';
import { prepare, type OnPrepareProgress, type PreparedModule } from '../wasm/prepare.js';
import { Kernel, newVmId, type KernelOptions } from '../guest/kernel.js';

export interface RunOptions extends Omit<KernelOptions, 'vmId'> {
  vmId?: string;
  env?: string[];
  /** More programs started in the same VM, each with its own memory. */
  also?: Array<{ program: string; args: string[] }>;
  onProgress?: OnPrepareProgress;
  /** Leave the listeners unbound (the VM is built to be uploaded to a cstrap). */
  upload?: boolean;
}

export async function loadProgram(
  file: string,
  onProgress?: OnPrepareProgress,
): Promise<PreparedModule> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new RoamError(
      'no-program',
      `cannot read program ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { kind: 'usage' },
    );
  }
  try {
    return await prepare(bytes, { onProgress });
  } catch (err) {
    // Not a module this roam can run (malformed, or a feature it lacks): the input is refused.
    throw new RoamError('bad-program', `${file}: ${(err as Error).message}`, {
      kind: 'refused',
      cause: err,
    });
  }
}

/** Build a new VM running `program` with `args`; call kernel.start() to run it. */
export async function bootVm(program: string, args: string[], opts: RunOptions): Promise<Kernel> {
  const mod = await loadProgram(program, opts.onProgress);
  const extra = [];
  for (const a of opts.also ?? [])
    extra.push({ ...a, mod: await loadProgram(a.program, opts.onProgress) });
  const kernel = new Kernel({ ...opts, vmId: opts.vmId ?? newVmId() });
  const listeners = await kernel.openListeners(true, !opts.upload);
  // argv[0] is the module's path as given, as wasmtime passes it.
  kernel.spawn(mod, [program, ...args], opts.env ?? [], listeners);
  for (const e of extra) kernel.spawn(e.mod, [e.program, ...e.args], opts.env ?? []);
  return kernel;
}
