// The kernel's options and its serialisable state (what a checkpoint holds of it).
import type { BlinkDeviceState } from './blink-device.js';
import type { ClockState } from './clock.js';
import type { Fd } from './fdtable.js';
import type { SocketState } from './net.js';
import type { RelayConfig, RelayState } from './relay.js';
import type { PagePool } from './page-pool.js';
import type { Process, SavedProcess } from './process.js';
import type { RamDisk } from './ramdisk.js';

export interface KernelOptions {
  vmId: string;
  dirs?: Array<{ host: string; guest: string }>;
  tcplisten?: string[];
  /** Per-process memory limit in MiB (default: the module's own maximum). */
  memoryMiB?: number;
  /** RAM disk capacity in MiB. */
  diskMiB?: number;
  stdout?: (b: Uint8Array) => void;
  stderr?: (b: Uint8Array) => void;
  log?: (msg: string) => void;
  /** The VM's home: its published ports are relayed over a session the VM opens (src/guest/relay.ts). */
  home?: RelayConfig;
  /** Called once every process has exited, with the first non-zero exit code (or 0). */
  onExit?: (code: number) => void;
}

export interface ProcessState extends SavedProcess {
  pid: number;
  slot: number;
  argv: string[];
  env: string[];
  module: string;
  /** What ran Asyncify on the module (its stack layout): a restore needs the same. */
  prepared?: string;
  status: Process['status'];
  exitCode: number | null;
  unwound: boolean;
  wait: { until?: string; reason: string } | null;
  fds: Array<[number, Fd]>;
}

export interface KernelState {
  version: string;
  vmId: string;
  clock: ClockState;
  stdoutBytes: number;
  stderrBytes: number;
  pool: ReturnType<PagePool['toJSON']>;
  ramdisk: ReturnType<RamDisk['toJSON']>;
  dirs: Array<{ host: string; guest: string }>;
  listeners: string[];
  sockets: Array<[number, SocketState]>;
  nextSock: number;
  nextPid: number;
  processes: ProcessState[];
  blink?: BlinkDeviceState; // /dev/blink's display state (absent in older checkpoints)
  relay?: RelayState; // the home session's streams (VMs with a home only)
}

/** Hooks the checkpoint machinery installs (src/checkpoint) for /dev/checkpoint. */
export interface DeviceHooks {
  /** A program read /dev/checkpoint for the first time: start streaming the VM. */
  startCheckpoint(session: number): void;
  /** Next chunk of the stream for `session`; null = none yet, empty = complete. */
  take(session: number, max: number): Uint8Array | null;
  /** A program wrote "migrate HOST:PORT" or "fork HOST:PORT"; false = not a command. */
  command(session: number, text: string): boolean;
}
