// The guest kernel: everything a VM is besides its programs' memories. It owns the
// processes, their fd tables, the RAM disk (in its own page pool, so file data is
// dirty-tracked like program memory), sockets and clocks, and keeps all of it
// serialisable so that a checkpoint holds the whole VM.
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KERNEL_POOL_SLOT, type FrameSpace } from '../memory/frames.js';
import type { PreparedModule } from '../wasm/prepare.js';
import { BlinkDevice } from './blink-device.js';
import { Clock, type ClockState } from './clock.js';
import { FdTable, type Fd } from './fdtable.js';
import type { FsBackend } from './fs.js';
import { HostFs } from './hostfs.js';
import { acceptRelayed, Connection, Listener, type Socket, type SocketState } from './net.js';
import { Relay, RelayStream } from './relay.js';
import type { DeviceHooks, KernelOptions, KernelState, ProcessState } from './state.js';
import { PagePool } from './page-pool.js';
import { Process, type SavedProcess } from './process.js';
import { RamDisk } from './ramdisk.js';
import { Scheduler } from './scheduler.js';
import { Stdio } from './stdio.js';
import { RAMDISK_MOVED, devicePreopens, markArrived } from './wasi/devices.js';
import { wasiImports } from './wasi/index.js';

export const KERNEL_VERSION = 'roam-kernel/1';

/** A new VM's id: random, so two hosts never hand out the same one. */
export const newVmId = (): string => randomBytes(6).toString('hex');

export type { DeviceHooks, KernelOptions, KernelState, ProcessState } from './state.js';

export class Kernel {
  readonly clock: Clock;
  pool: PagePool;
  ramdisk: RamDisk;
  readonly mounts: FsBackend[];
  readonly dirs: Array<{ host: string; guest: string }>;
  readonly listeners: string[];
  readonly sockets = new Map<number, Socket>();
  nextSock = 1;
  readonly processes = new Map<number, Process>();
  readonly fds = new Map<number, FdTable>();
  nextPid = 1;
  readonly scheduler: Scheduler;
  readonly stdio: Stdio;
  /** Set while a checkpoint is being taken: the kernel marks its own page writes. */
  device: DeviceHooks | null = null;
  nextSession = 1;
  blink = new BlinkDevice(() => this.wakeAll()); // /dev/blink, saved with the kernel
  /** The session with the VM's home and the client streams it relays (a VM without a home has none). */
  relay: Relay | null = null;
  private timers = new Map<number, NodeJS.Timeout>();
  private exited = false;
  readonly log: (msg: string) => void;

  constructor(
    readonly opts: KernelOptions,
    restored?: { clock: ClockState; pool: PagePool; ramdisk: KernelState['ramdisk'] },
  ) {
    this.log = opts.log ?? ((m) => process.stderr.write(`roam: ${m}\n`));
    this.clock = new Clock(restored?.clock);
    this.stdio = new Stdio(opts, () => this.wakeAll());
    const limitPages = opts.diskMiB ? opts.diskMiB * 256 : undefined;
    this.pool = restored?.pool ?? new PagePool({ limitPages });
    const now = () => this.clock.realtime();
    this.ramdisk = restored
      ? RamDisk.restore(restored.ramdisk, this.pool, now)
      : new RamDisk(this.pool, now);
    this.dirs = opts.dirs ?? [];
    this.listeners = opts.tcplisten ?? [];
    this.mounts = [this.ramdisk, ...this.dirs.map((d) => new HostFs(path.resolve(d.host)))];
    if (opts.home) this.relay = new Relay(opts.home, ...this.relayHooks());
    this.scheduler = new Scheduler(
      () => [...this.processes.values()],
      (p, err) => this.trap(p, err),
      () => this.allExited(),
    );
  }

  /** A relayed client reaches the program through the listener `home:PORT` of its published port. */
  private relayHooks(): [(port: number, s: RelayStream) => boolean, () => void] {
    return [(port, st) => acceptRelayed(this.sockets, port, st), () => this.wakeAll()];
  }

  get vmId(): string {
    return this.opts.vmId;
  }

  /**
   * Open the `--tcplisten` sockets. On restore they may still be taken by the
   * original. `bind` false: only name them (a VM built here to be uploaded
   * elsewhere listens there, not here).
   */
  async openListeners(mustSucceed: boolean, bind = true): Promise<number[]> {
    const ids: number[] = [];
    for (const addr of this.listeners) {
      const l = new Listener(addr, () => this.wakeAll(), this.log);
      if (bind) await l.listen(mustSucceed);
      const id = this.nextSock++;
      this.sockets.set(id, l);
      ids.push(id);
    }
    return ids;
  }

  /** The frame spaces a checkpoint copies: the page pool, then each live process. */
  frameSpaces(): FrameSpace[] {
    const spaces: FrameSpace[] = [this.pool];
    for (const p of this.processes.values()) if (p.status !== 'exited') spaces.push(p);
    return spaces;
  }

  modules(): PreparedModule[] {
    const seen = new Map<string, PreparedModule>();
    for (const p of this.processes.values()) seen.set(p.mod.meta.hash, p.mod);
    return [...seen.values()];
  }

  /** Start a program as a new process with stdio, the preopens and the listeners. */
  spawn(mod: PreparedModule, argv: string[], env: string[], listenerIds: number[] = []): Process {
    const pid = this.nextPid++;
    const table = new FdTable();
    table.add({ t: 'stdin' });
    table.add({ t: 'stdout' });
    table.add({ t: 'stderr' });
    for (const e of this.preopens()) table.add(e);
    for (const id of listenerIds) table.add({ t: 'sock', sock: id });
    return this.addProcess(pid, mod, argv, env, table);
  }

  /**
   * The preopens, from fd 3 in wasmtime's order: the --dir folders first, then the
   * RAM disk at / (or at RAMDISK_MOVED when a folder takes /), /dev and /net.
   */
  private preopens(): Fd[] {
    const dirs: Fd[] = this.dirs.map((d, i) => ({
      t: 'dir',
      mount: i + 1,
      h: this.mounts[i + 1].root(),
      preopen: d.guest,
    }));
    const rootTaken = this.dirs.some((d) => d.guest === '/');
    const ram: Fd = {
      t: 'dir',
      mount: 0,
      h: this.ramdisk.root(),
      preopen: rootTaken ? RAMDISK_MOVED : '/',
    };
    return [...dirs, ram, ...devicePreopens()];
  }

  private addProcess(
    pid: number,
    mod: PreparedModule,
    argv: string[],
    env: string[],
    table: FdTable,
    memory?: WebAssembly.Memory,
  ): Process {
    const maxPages = this.opts.memoryMiB ? Math.floor(this.opts.memoryMiB * 16) : undefined; // 64 KiB wasm pages
    if (maxPages !== undefined && maxPages < mod.meta.initialPages)
      throw new Error(
        `${argv[0]} needs at least ${Math.ceil(mod.meta.initialPages / 16)} MiB of memory to start; the limit is ${this.opts.memoryMiB} MiB`,
      );
    const p = new Process(
      pid,
      pid,
      argv,
      env,
      mod,
      (proc) => wasiImports(this, proc),
      maxPages,
      memory,
    );
    this.processes.set(pid, p);
    this.fds.set(pid, table);
    return p;
  }

  /** Keeps the OS process alive while every program waits on the outside world. */
  private keepAlive: NodeJS.Timeout | null = null;

  /** Restored listeners not yet bound (start binds them). */
  private readonly unbound: Listener[] = [];

  start(): void {
    for (const l of this.unbound.splice(0)) void l.listen(false);
    this.keepAlive ??= setInterval(() => {}, 1 << 30);
    this.scheduler.kick();
  }

  // ---- events --------------------------------------------------------------

  /** Something happened (data, a connection, EOF): blocked processes retry their syscall. */
  wakeAll(): void {
    let any = false;
    for (const p of this.processes.values()) {
      if (p.status === 'blocked' && !(p.wait && p.wait.reason === 'sleep')) {
        p.status = 'runnable';
        any = true;
      }
    }
    if (any) this.scheduler.kick();
  }

  wake(p: Process): void {
    if (p.status === 'blocked') {
      p.status = 'runnable';
      this.scheduler.kick();
    }
  }

  /** Wake `p` at monotonic time `until` (ns). */
  timer(p: Process, until: bigint): void {
    const old = this.timers.get(p.pid);
    if (old) clearTimeout(old);
    const ms = Number(until - this.clock.monotonic()) / 1e6;
    this.timers.set(
      p.pid,
      setTimeout(
        () => {
          this.timers.delete(p.pid);
          this.wake(p);
        },
        Math.max(0, ms),
      ),
    );
  }

  private trap(p: Process, err: unknown): void {
    const msg = err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
    this.log(`process ${p.pid} (${p.argv[0]}) crashed: ${msg}`);
    this.scheduler.kick();
  }

  private allExited(): void {
    if (this.exited) return;
    this.exited = true;
    if (this.keepAlive) clearInterval(this.keepAlive);
    const codes = [...this.processes.values()].map((p) => p.exitCode ?? 0);
    const code = codes.find((c) => c !== 0) ?? 0;
    // Every byte the programs wrote reaches the reader before the VM says it is done.
    void this.stdio.drained().then(() => this.opts.onExit?.(code));
  }

  // ---- stdio and fencing (thesis 5.4) ---------------------------------------

  get stdoutBytes(): number {
    return this.stdio.stdoutBytes;
  }
  get stderrBytes(): number {
    return this.stdio.stderrBytes;
  }
  get fenced(): boolean {
    return this.stdio.fenced;
  }
  /** From now on nothing the programs send leaves the VM (connections, stdout, stderr). */
  fence(): void {
    this.stdio.fence();
    this.relay?.fence();
    for (const s of this.sockets.values()) if (s instanceof Connection) s.fence();
  }
  /** The migration aborted: release what was held, in order, and carry on. */
  unfence(): void {
    this.stdio.unfence();
    for (const s of this.sockets.values()) if (s instanceof Connection) s.unfence();
    this.relay?.unfence();
    this.wakeAll();
  }

  // ---- serialisation -------------------------------------------------------

  /** The kernel state at a freeze point: every process must be between slices. */
  save(): KernelState {
    const processes: ProcessState[] = [];
    for (const p of this.processes.values()) {
      const saved: SavedProcess =
        p.status === 'exited' ? { virtPages: 0, globals: {}, stack: null } : p.save();
      processes.push({
        ...saved,
        pid: p.pid,
        slot: p.slot,
        argv: p.argv,
        env: p.env,
        module: p.mod.meta.hash,
        prepared: p.mod.meta.asyncify?.by,
        status: p.status,
        exitCode: p.exitCode,
        unwound: p.unwound,
        wait: p.wait ? { reason: p.wait.reason, until: p.wait.until?.toString() } : null,
        fds: this.fds.get(p.pid)!.toJSON(),
      });
    }
    const sockets: Array<[number, SocketState]> = [...this.sockets].map(([id, s]) => [
      id,
      s instanceof RelayStream ? { kind: 'relay', sid: s.sid } : s.save(),
    ]);
    return {
      version: KERNEL_VERSION,
      vmId: this.vmId,
      clock: this.clock.save(),
      stdoutBytes: this.stdoutBytes,
      stderrBytes: this.stderrBytes,
      pool: this.pool.toJSON(),
      ramdisk: this.ramdisk.toJSON(),
      dirs: this.dirs,
      listeners: this.listeners,
      sockets,
      nextSock: this.nextSock,
      nextPid: this.nextPid,
      processes,
      blink: this.blink.toJSON(),
      ...(this.relay ? { relay: this.relay.save() } : {}),
    };
  }

  /**
   * Rebuild a kernel from a checkpoint: `pages(slot)` gives the final page contents
   * of a frame space, `module(hash)` the prepared module.
   */
  static async restore(
    state: KernelState,
    pages: (slot: number) => Map<number, Uint8Array>,
    module: (hash: string) => Promise<PreparedModule>,
    opts: Omit<KernelOptions, 'dirs' | 'tcplisten'>,
    /** Memories already holding the pages of a frame space (a migration builds them as pages arrive). */
    prebuilt: (slot: number) => WebAssembly.Memory | undefined = () => undefined,
  ): Promise<Kernel> {
    if (state.version !== KERNEL_VERSION)
      throw new Error(
        `checkpoint was taken by guest kernel ${state.version}; this roam runs ${KERNEL_VERSION}`,
      );
    const pool = PagePool.restore(state.pool, pages(KERNEL_POOL_SLOT));
    const k = new Kernel(
      { ...opts, dirs: state.dirs, tcplisten: state.listeners },
      { clock: state.clock, pool, ramdisk: state.ramdisk },
    );
    k.stdio.stdoutBytes = state.stdoutBytes;
    k.stdio.stderrBytes = state.stderrBytes;
    k.nextPid = state.nextPid;
    k.nextSock = state.nextSock;
    k.blink = BlinkDevice.restore(state.blink, () => k.wakeAll());
    if (state.relay) k.relay = Relay.restore(state.relay, ...k.relayHooks());
    const relayed = (sid: number): RelayStream => {
      const st = k.relay?.streams.get(sid);
      if (st) return st;
      const gone = new RelayStream(sid, 0, '?', k.relay!);
      gone.reset = true;
      return gone;
    };
    for (const [id, s] of state.sockets) {
      if (s.kind === 'relay') k.sockets.set(id, relayed(s.sid));
      else if (s.kind === 'listener') {
        const l = new Listener(s.addr, () => k.wakeAll(), k.log);
        for (const sid of s.queued ?? []) l.push(relayed(sid));
        k.sockets.set(id, l);
        // Bound when the VM starts: an arrived VM is not started before its migration commits.
        k.unbound.push(l);
      } else {
        // The host side of an open connection did not move: the program sees a reset.
        k.sockets.set(id, new Connection(s.peer, null, () => k.wakeAll()));
      }
    }
    for (const ps of state.processes) {
      const mod = await module(ps.module);
      const table = FdTable.from(ps.fds);
      markArrived(table);
      const memory = ps.status === 'exited' ? undefined : prebuilt(ps.slot);
      const p = k.addProcess(ps.pid, mod, ps.argv, ps.env, table, memory);
      p.status = ps.status;
      p.exitCode = ps.exitCode;
      p.wait = ps.wait
        ? { reason: ps.wait.reason, until: ps.wait.until ? BigInt(ps.wait.until) : undefined }
        : null;
      if (ps.status === 'exited') continue;
      p.growTo(ps.virtPages);
      if (!memory) {
        // Instantiation applied the data segments; memory grown since is already zero.
        const mem = p.bytes();
        mem.fill(0, 0, Math.min(ps.virtPages, mod.meta.initialPages) * 65536);
        for (const [page, data] of pages(ps.slot)) mem.set(data, page * 4096);
      }
      // A prebuilt memory already holds exactly the pages (Process kept them from the data segments).
      p.load(ps);
      // Retry every blocked syscall once: its condition is re-evaluated on the new host.
      if (p.status === 'blocked') p.status = 'runnable';
      if (p.wait?.until !== undefined) k.timer(p, p.wait.until);
    }
    return k;
  }

  /** Stop everything (the VM is being shut down). */
  close(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    for (const t of this.timers.values()) clearTimeout(t);
    for (const s of this.sockets.values()) s.close();
    for (const m of this.mounts) if (m instanceof HostFs) m.closeAll();
  }
}
