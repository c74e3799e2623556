// The VM launcher: each VM is a separate Node process under Node's permission
// model (read: the roam code and its own folder; write: its folder only; no
// child processes, workers or addons), with a V8 heap cap, optionally as its own
// uid. A few empty VMs are kept warm so that a boot token is served at once.
// The daemon talks to a VM over a narrow pipe: it writes one-line commands to
// its stdin and reads back only its cstrap address; it never reads what the VM
// stores (checkpoints, programs, its console log).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Launched, LaunchRequest } from './packetd.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url)); // dist/src/host -> the roam folder
const SUSPENDED = 'suspend.ckpt'; // what a VM told to go writes before it exits

export interface LauncherOptions {
  stateDir: string;     // one folder per VM below this
  host?: string;        // address the cstraps listen on
  warm?: number;        // empty VMs kept ready
  heapMiB?: number;     // V8 heap of each VM process (WASM memory is metered, not capped here)
  uid?: number;         // as root: run each VM as uid+n, gid+n (its own user)
  log?: (msg: string) => void;
}

export class ProcessLauncher {
  private readonly pool: Promise<Launched>[] = [];
  private next = 0;
  constructor(private readonly o: LauncherOptions) { this.fill(); }

  readonly launch = async (req: LaunchRequest): Promise<Launched> => {
    if (req.revive) return this.revive(req.revive);
    const vm = await (this.pool.shift() ?? this.start());
    this.fill();
    vm.notify(`boot ${req.key.toString('hex')} ${req.loaderSha256} ${req.memoryMiB}`);
    return vm;
  };

  close(): void { for (const p of this.pool.splice(0)) void p.then((vm) => vm.purge(), () => undefined); }

  private fill(): void {
    while (this.pool.length < (this.o.warm ?? 2)) {
      const p = this.start();
      p.catch((e: Error) => { this.o.log?.(`warm VM: ${e.message}`); this.pool.splice(this.pool.indexOf(p), 1); });
      this.pool.push(p);
    }
  }

  private start(): Promise<Launched> {
    return this.spawn(`vm-${randomBytes(6).toString('hex')}`, ['cstrap', '--host-channel', '--listen', `${this.o.host ?? '127.0.0.1'}:0`]);
  }

  // Resume a VM from the state it suspended to; the file is renamed first so that
  // a later exit without a new suspension is not mistaken for one.
  private revive(vmId: string): Promise<Launched> {
    const dir = path.join(this.o.stateDir, vmId);
    fs.renameSync(path.join(dir, SUSPENDED), path.join(dir, 'resume.ckpt'));
    return this.spawn(vmId, ['restore', 'resume.ckpt', '--host-channel']);
  }

  private spawn(vmId: string, args: string[]): Promise<Launched> {
    const dir = path.join(this.o.stateDir, vmId), n = this.next++;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ids = this.o.uid === undefined ? {} : { uid: this.o.uid + n, gid: this.o.uid + n };
    if (ids.uid !== undefined) fs.chownSync(dir, ids.uid, ids.gid!);
    const out = fs.openSync(path.join(dir, 'console.log'), 'a', 0o600);
    const child = spawn(process.execPath, [
      '--experimental-permission', `--allow-fs-read=${ROOT}*`, `--allow-fs-read=${dir}/*`, `--allow-fs-write=${dir}/*`,
      `--max-old-space-size=${this.o.heapMiB ?? 512}`, '--no-warnings', path.join(ROOT, 'bin/roam.js'), ...args,
    ], { cwd: dir, env: { ROAM_HOME: dir, PATH: process.env.PATH }, stdio: ['pipe', out, out, 'pipe'], ...ids });
    fs.closeSync(out);
    child.stdin!.on('error', () => undefined); // a VM that is gone reads no more notices
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const vm: Launched = {
      vmId, addr: '', pid: child.pid, exited,
      notify: (line) => void child.stdin!.write(`${line}\n`),
      suspended: () => fs.existsSync(path.join(dir, SUSPENDED)),
      stop: () => child.kill('SIGKILL'),
      purge: () => { child.kill('SIGKILL'); void exited.then(() => fs.rmSync(dir, { recursive: true, force: true })); },
    };
    if (args[0] !== 'cstrap') return Promise.resolve(vm);
    // The one thing read from a VM: its first line on fd 3, the address it accepts on.
    return new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
      lines.once('line', (addr) => { lines.close(); resolve({ ...vm, addr: addr.slice(0, 64) }); });
      void exited.then(() => reject(new Error(`VM ${vmId} exited before it was ready (see ${dir}/console.log)`)));
    });
  }
}
