// A full garbage collection on demand, for the moments just before a migration's
// critical path (the source's freeze, the destination's build). The pre-copy
// rounds leave hundreds of MiB of dead record buffers behind; V8 would otherwise
// collect them whenever its heuristics say, and a pause of 10-30 ms landing between
// the freeze and the first instruction is all downtime. Without --expose-gc the
// collector is reached through a context created after setting the flag.
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | null | undefined;

/** Collects now; false if this V8 does not let us (then nothing happens). */
export function collectGarbage(): boolean {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const f = vm.runInNewContext('gc') as unknown;
      gc = typeof f === 'function' ? (f as () => void) : null;
    } catch {
      gc = null;
    }
  }
  gc?.();
  return gc !== null;
}
