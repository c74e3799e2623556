// args_* and environ_*: both are an array of pointers into NUL-terminated strings.
import { utf8, utf8Length } from './memory.js';
import type { Sys } from './syscall.js';

export function argsImports(s: Sys): WebAssembly.ModuleImports {
  const m = s.mem;
  const sizes = (list: string[], nPtr: number, sizePtr: number): number => {
    m.setU32(nPtr, list.length);
    m.setU32(
      sizePtr,
      list.reduce((a, x) => a + utf8Length(x) + 1, 0),
    );
    return 0;
  };
  const get = (list: string[], ptrs: number, buf: number): number => {
    for (const x of list) {
      m.setU32(ptrs, buf);
      ptrs += 4;
      const b = utf8(x + '\0');
      m.write(buf, b);
      buf += b.length;
    }
    return 0;
  };
  return {
    args_sizes_get: s.sys((n: number, size: number) => sizes(s.p.argv, n, size)),
    args_get: s.sys((ptrs: number, buf: number) => get(s.p.argv, ptrs, buf)),
    environ_sizes_get: s.sys((n: number, size: number) => sizes(s.p.env, n, size)),
    environ_get: s.sys((ptrs: number, buf: number) => get(s.p.env, ptrs, buf)),
  };
}
