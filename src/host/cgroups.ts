// cgroups for VM processes (issue 13), as root: each VM in a group of its own,
// bounding its memory (token + Node's overhead), CPU (cpuShare % of one core) and
// tasks, whatever its own code does. cgroup v2 where /sys/fs/cgroup offers memory,
// cpu and pids (memory.max, cpu.max, pids.max under roam/VMID); else the v1
// hierarchies of those names (CTL/roam/VMID). Neither: the daemon runs without.
import fs from 'node:fs';
import path from 'node:path';

export type Limits = { memoryMiB: number; cpuShare: number };
const CTLS = ['memory', 'cpu', 'pids'];

export class Cgroups {
  private constructor(
    readonly version: 1 | 2,
    private readonly root: string,
  ) {}

  /** The cgroups under `root` (made ready for VMs' groups), or why there are none. */
  static find(root = '/sys/fs/cgroup'): Cgroups | string {
    const v2 = path.join(root, 'cgroup.controllers');
    try {
      if (!fs.existsSync(v2)) {
        const miss = CTLS.filter((c) => !fs.existsSync(path.join(root, c, 'cgroup.procs')));
        if (miss.length) return `${root} has neither cgroup v2 nor v1 ${miss.join(', ')}`;
        for (const c of CTLS) fs.mkdirSync(path.join(root, c, 'roam'), { recursive: true });
        return new Cgroups(1, root);
      }
      const miss = CTLS.filter((c) => !fs.readFileSync(v2, 'utf8').split(/\s+/).includes(c));
      if (miss.length) return `cgroup v2 at ${root} lacks ${miss.join(', ')}`;
      // A group has a controller's files only if each parent turns it on for its children.
      fs.mkdirSync(path.join(root, 'roam'), { recursive: true });
      for (const d of [root, path.join(root, 'roam')])
        fs.writeFileSync(path.join(d, 'cgroup.subtree_control'), '+memory +cpu +pids');
      return new Cgroups(2, path.join(root, 'roam'));
    } catch (e) {
      return `${root} is not writable here (${(e as Error).message})`;
    }
  }

  private dir(ctl: string, vmId: string): string {
    return this.version === 2
      ? path.join(this.root, vmId)
      : path.join(this.root, ctl, 'roam', vmId);
  }

  /** The VM's limits (its groups made on the first call), and `pid` moved in. */
  set(vmId: string, lim: Limits, pid?: number): void {
    const mem = String(lim.memoryMiB * 1048576),
      quota = Math.max(1000, lim.cpuShare * 1000); // of a 100 ms period: cpuShare 100 = one core
    const files =
      this.version === 2
        ? [
            ['memory.max', mem],
            ['cpu.max', `${quota} 100000`],
            ['pids.max', '64'],
          ]
        : [
            ['memory.limit_in_bytes', mem],
            ['cpu.cfs_quota_us', String(quota)],
            ['pids.max', '64'],
          ];
    for (const [i, [file, value]] of files.entries()) {
      const dir = this.dir(CTLS[i], vmId);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, file), value);
      if (pid) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    }
  }

  /** Its groups, once its process is gone (the kernel removes an empty group's files). */
  remove(vmId: string): void {
    for (const c of CTLS)
      try {
        fs.rmdirSync(this.dir(c, vmId));
      } catch {
        /* never made, or gone (v2: one group for all three) */
      }
  }
}
