// The VM launcher: each VM is a separate Node process under Node's permission
// model (it reads the roam code and its own folder, writes only its folder, and
// may not start processes, workers or addons), with a V8 heap cap and, as root,
// a uid of its own. A few empty VMs (cstraps) are kept warm, so that a boot
// token is served at once. The daemon talks to a VM over a narrow pipe: one-line
// commands on its stdin (src/vm/host-channel.ts) and, from a cstrap, one line
// back on fd 3, its address. It never reads what a VM stores.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs, { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Launched, LaunchRequest } from './packetd.js';
import { VmNet } from './netns.js';
import type { Cgroups } from './cgroups.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url)); // dist/src/host -> the roam folder
const SUSPENDED = 'suspend.ckpt'; // what a VM told to go leaves behind when it exits
export const CODE = ['bin/*', 'dist/src/*', 'node_modules/*', 'package.json']; // what a VM may read of ROOT

/** True when a VM process could read `file` (the daemon refuses to keep its secrets there). */
export const vmReadable = (file: string): boolean =>
  CODE.some((c) => path.resolve(file).startsWith(path.join(ROOT, c.replace(/\*$/, ''))));

// What the meter reads: the process' CPU time and resident memory in /proc (Linux),
// never a figure the VM reports. Fields after "(comm)": f[0] is field 3 of proc(5).
function usage(pid: number): ReturnType<Launched['usage']> {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1'),
      f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      cpuS: (Number(f[11]) + Number(f[12])) / 100,
      rssMiB: (Number(f[21]) * 4096) / 1048576,
    }; // USER_HZ 100, 4 KiB pages
  } catch {
    return null; // gone
  }
}

// What a VM's folder holds on disk, in MiB; Infinity past 10,000 entries (a VM
// that makes that many files is over any quota, and the walk stays bounded).
function diskMiB(dir: string): number {
  let bytes = 0,
    n = 0;
  const todo = [dir];
  for (let d = todo.pop(); d !== undefined; d = todo.pop())
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (++n > 10_000) return Infinity;
      const p = path.join(d, e.name);
      if (e.isDirectory()) todo.push(p);
      else bytes += fs.lstatSync(p).blocks * 512;
    }
  return bytes / 1048576;
}

const OVERHEAD_MIB = 160; // Node itself, beyond the token's memory (as the meter's default)
const WARM = { memoryMiB: 256, cpuShare: 100 }; // a warm VM's limits until its token arrives

// One folder per VM in stateDir; cstraps listen on host; uid: as root, VM n runs as uid+n.
export type LauncherOptions = {
  stateDir: string;
  host: string;
  warm: number;
  uid?: number;
  cgroups?: Cgroups; // as root where cgroupfs allows: each VM in groups of its own
  netns?: string; // the daemon's tag (netns.ts): each VM in a namespace of its own
  log: (msg: string) => void;
};
const HEAP_MIB = 512; // V8 heap of a VM process; its WASM memory is metered instead

export class ProcessLauncher {
  private readonly pool: Promise<Launched>[] = [];
  private readonly nets = new Map<string, VmNet>(); // with --netns: each VM's namespace
  private n = 0;
  // The state folder lets VMs of other uids through to their own folders, no further.
  // keep: the folders of the job table's VMs; any other VM folder is an orphan of a crash.
  constructor(
    private readonly o: LauncherOptions,
    keep = new Set<string>(),
  ) {
    fs.mkdirSync(o.stateDir, { recursive: true, mode: 0o711 });
    for (const d of fs.readdirSync(o.stateDir))
      if (/^vm-[0-9a-f]{12}$/.test(d) && !keep.has(d)) {
        o.log(`removing ${d}: no job of this node's owns it`);
        fs.rmSync(path.join(o.stateDir, d), { recursive: true, force: true });
      }
    this.fill();
  }

  // A VM of this node from before a restart: it exits once it has suspended
  // itself (its pipe to the daemon closed); purge kills it if it is still ours.
  readonly recover = (vmId: string, pid?: number): Launched => {
    const dir = path.join(this.o.stateDir, vmId),
      ours = () => {
        try {
          return !!pid && readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(dir);
        } catch {
          return false; // gone
        }
      };
    const exited = new Promise<void>((r) => {
      const t = setInterval(() => !ours() && (clearInterval(t), r()), 200);
    });
    return {
      vmId,
      addr: '',
      exited,
      usage: () => (ours() ? { ...usage(pid!)!, diskMiB: diskMiB(dir) } : null),
      notify: () => undefined,
      suspended: () => fs.existsSync(path.join(dir, SUSPENDED)),
      purge: () => {
        if (ours()) process.kill(pid!, 'SIGKILL');
        void exited.then(() => fs.rmSync(dir, { recursive: true, force: true }));
      },
    };
  };

  // A revived VM is a cstrap started in its old folder: it resumes what it suspended there.
  readonly launch = async (req: LaunchRequest): Promise<Launched> => {
    const vm = await (req.revive
      ? this.spawn(req.revive, req.ports)
      : (this.pool.shift() ?? this.spawn()));
    // A spare left: refill later, not while this VM receives its image (a spawn is ~0.2 s of a core).
    setTimeout(() => this.fill(), this.pool.length ? 2000 : 0).unref();
    const vn = this.nets.get(vm.vmId);
    if (vn) vn.limit = req.ports;
    try {
      this.o.cgroups?.set(vm.vmId, { ...req, memoryMiB: req.memoryMiB + OVERHEAD_MIB });
    } catch (e) {
      vm.purge(); // never a VM without the limits its token sets
      throw e;
    }
    vm.notify(`boot ${req.key.toString('hex')} ${req.loaderSha256} ${req.memoryMiB}`);
    return vm;
  };

  // A warm VM that fails to start or dies waiting is replaced (after a second, so
  // that a VM that cannot start is not respawned in a busy loop): none is handed out dead.
  private fill(): void {
    while (this.pool.length < this.o.warm) {
      const p = this.spawn();
      void p
        .then(
          (vm) => vm.exited,
          (e: Error) => this.o.log(`warm VM: ${e.message}`),
        )
        .then(() => {
          if (!this.pool.includes(p)) return; // handed out
          void this.pool.splice(this.pool.indexOf(p), 1);
          setTimeout(() => this.fill(), 1000);
        });
      this.pool.push(p);
    }
  }

  private async spawn(vmId = `vm-${randomBytes(6).toString('hex')}`, ports = 0): Promise<Launched> {
    const dir = path.join(this.o.stateDir, vmId),
      uid = this.o.uid === undefined ? undefined : this.o.uid + this.n++;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (uid !== undefined) fs.chownSync(dir, uid, uid);
    const out = fs.openSync(path.join(dir, 'console.log'), 'a', 0o600);
    const vn = this.o.netns ? new VmNet(vmId, this.o.host, this.o.netns) : undefined;
    if (vn) this.nets.set(vmId, Object.assign(vn, { limit: ports }));
    const argv = [
      process.execPath,
      '--experimental-permission',
      // The roam code only: never the roam folder itself, where secrets and ledgers may sit.
      ...CODE.map((c) => `--allow-fs-read=${path.join(ROOT, c)}`),
      `--allow-fs-read=${dir}/*`,
      `--allow-fs-write=${dir}/*`,
      `--max-old-space-size=${HEAP_MIB}`,
      '--no-warnings',
      path.join(ROOT, 'bin/roam.js'),
      'cstrap',
      '--host-channel',
      '--listen',
      `${vn ? '127.0.0.1' : this.o.host}:0`, // in its namespace, its own loopback
    ];
    // In a namespace, nsenter (then setpriv) starts it: each execs, so the pid is the VM's.
    const [cmd, ...args] = vn ? vn.command(argv, uid) : argv;
    const child = spawn(cmd, args, {
      cwd: dir,
      env: { ROAM_HOME: dir, PATH: process.env.PATH },
      stdio: ['pipe', out, out, 'pipe'],
      ...(vn ? {} : { uid, gid: uid }),
    });
    fs.closeSync(out);
    try {
      this.o.cgroups?.set(vmId, WARM, child.pid);
    } catch (e) {
      child.kill('SIGKILL'); // nor one outside its cgroups
      throw e;
    }
    child.stdin!.on('error', () => undefined); // a VM that is gone takes no more notices
    const exited = new Promise<void>((r) =>
      child.once('exit', () => {
        this.o.cgroups?.remove(vmId);
        vn?.close();
        this.nets.delete(vmId);
        r();
      }),
    );
    const vm: Launched = {
      vmId,
      pid: child.pid,
      addr: '',
      exited,
      usage: () => {
        const u = usage(child.pid!);
        return u && { ...u, diskMiB: diskMiB(dir) };
      },
      notify: (line) => void child.stdin!.write(`${line}\n`),
      suspended: () => fs.existsSync(path.join(dir, SUSPENDED)),
      purge: () => {
        child.kill('SIGKILL');
        void exited.then(() => fs.rmSync(dir, { recursive: true, force: true }));
      },
    };
    return new Promise((resolve, reject) => {
      this.hear(vm, child, vn, resolve);
      void exited.then(() =>
        reject(new Error(`VM ${vmId} exited before it was ready (see ${dir}/console.log)`)),
      );
    });
  }

  // What a VM says on fd 3: first its upload address, then (in a namespace) `listen PORT` for
  // each port it wants published, and `uploaded` once it needs its upload port no more.
  // Lines are short: a longer one ends the VM.
  private hear(
    vm: Launched,
    child: ChildProcess,
    vn: VmNet | undefined,
    ready: (vm: Launched) => void,
  ) {
    let first = true,
      upload: number | null = null;
    const kill = () => void child.kill('SIGKILL');
    lines(child.stdio[3] as NodeJS.ReadableStream, 64, kill, (line) => {
      if (first) {
        first = false;
        const port = /^127\.0\.0\.1:(\d+)$/.exec(line)?.[1];
        if (!vn || !port) return ready({ ...vm, addr: line });
        void vn.publish(0, Number(port)).then((p) => {
          upload = p;
          return p ? ready({ ...vm, addr: `${this.o.host}:${p}` }) : kill();
        }, kill);
      } else if (vn && line === 'uploaded' && upload) {
        vn.unpublish(upload);
        this.o.log(`${vm.vmId}: upload port ${upload} unpublished`);
        upload = null;
      } else if (vn && /^listen \d{4,5}$/.test(line)) {
        const port = Number(line.slice(7));
        if (port <= 65535 && vn.want(port)) void this.publish(vn, vm.vmId, port);
        else this.o.log(`${vm.vmId}: port ${port} not published: its token allows ${vn.limit}`);
      }
    });
  }

  // A program port, at the same number on the host, within the token's count; retried while
  // the host port is taken (a VM migrating on this host lets go of it within moments).
  private async publish(vn: VmNet, vmId: string, port: number, tries = 50): Promise<void> {
    if (this.nets.get(vmId) !== vn) return; // gone
    if (await vn.publish(port, port)) return this.o.log(`${vmId}: published port ${port}`);
    if (tries > 0) setTimeout(() => void this.publish(vn, vmId, port, tries - 1), 200);
  }
}

// Calls `fn` with each line of `input`; a line longer than `max` calls `kill` (the daemon keeps no more).
function lines(
  input: NodeJS.ReadableStream,
  max: number,
  kill: () => void,
  fn: (l: string) => void,
): void {
  let buf = '';
  input.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      fn(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (buf.length > max) {
      input.removeAllListeners('data');
      kill();
    }
  });
  input.on('error', () => undefined);
}
