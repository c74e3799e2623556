// WASI preview1, implemented by the guest kernel itself (node:wasi keeps its state
// where a checkpoint cannot reach it), one file per interface as jco's
// preview2-shim does. Each syscall reads its arguments from the calling process'
// memory and returns an errno; one that must wait unwinds the program (Asyncify)
// and is re-entered with the same arguments (syscall.ts).
import type { Kernel } from '../kernel.js';
import type { Process } from '../process.js';
import { argsImports } from './args.js';
import { clockImports } from './clock.js';
import { fdImports } from './fd.js';
import { pathImports } from './path.js';
import { pollImports, safepoint } from './poll.js';
import { procImports } from './proc.js';
import { sockImports } from './sock.js';
import { Sys } from './syscall.js';

export { ARRIVED_ERRNO } from './devices.js';

/** The import object of one process: wasi_snapshot_preview1, and roam's safepoint poll. */
export function wasiImports(k: Kernel, p: Process): WebAssembly.Imports {
  const s = new Sys(k, p);
  return {
    wasi_snapshot_preview1: {
      ...argsImports(s),
      ...clockImports(s),
      ...procImports(s),
      ...pollImports(s),
      ...fdImports(s),
      ...pathImports(s),
      ...sockImports(s),
    },
    roam: { poll: safepoint(s) },
  };
}
