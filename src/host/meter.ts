// What the meter reads of a VM: its process' CPU time and resident memory, from
// /proc (Linux). Never a figure the VM reports about itself.
import { readFileSync } from 'node:fs';
import type { Usage } from './packetd.js';

const TICKS_PER_S = 100; // USER_HZ: fixed at 100 on Linux, whatever the kernel's HZ
const PAGE = 4096;

export function procUsage(pid: number): Usage | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after "(comm)", which may itself hold spaces: f[0] is field 3 of proc(5).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { cpuS: (Number(f[11]) + Number(f[12])) / TICKS_PER_S, rssMiB: (Number(f[21]) * PAGE) / 1048576 };
  } catch {
    return null; // the VM is gone
  }
}
