// proc_*: leaving the program. proc_exit unwinds the WASM stack by throwing.
import { Errno } from '../errno.js';
import { ProcExit } from '../process.js';
import type { Sys } from './syscall.js';

export function procImports(s: Sys): WebAssembly.ModuleImports {
  return {
    proc_exit: (code: number): never => {
      throw new ProcExit(code);
    },
    proc_raise: s.sys(() => Errno.NOSYS),
  };
}
