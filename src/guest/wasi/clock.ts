// clock_* and random_get. The clocks are the kernel's (src/guest/clock.ts), which
// carry on across a checkpoint instead of jumping with the host's.
import { randomFillSync } from 'node:crypto';
import type { Sys } from './syscall.js';

const CLOCK_REALTIME = 0;

export function clockImports(s: Sys): WebAssembly.ModuleImports {
  const { k, mem: m } = s;
  return {
    clock_res_get: s.sys((_id: number, ptr: number) => {
      m.setU64(ptr, 1000n);
      return 0;
    }),
    clock_time_get: s.sys((id: number, _precision: bigint, ptr: number) => {
      m.setU64(ptr, id === CLOCK_REALTIME ? k.clock.realtime() : k.clock.monotonic());
      return 0;
    }),
    random_get: s.sys((ptr: number, len: number) => {
      randomFillSync(m.bytes().subarray(ptr, ptr + len));
      m.dirty(ptr, len);
      return 0;
    }),
  };
}
