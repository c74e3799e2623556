// What goes over a VM's control socket: one JSON request line in; progress
// events, then one final event, out. Requests come from any local process that
// can open the socket, so each is checked field by field before the VM acts.
import type { CheckpointResult, RoundProgress, RoundStats } from '../checkpoint/cleaner.js';
import type { MigrateResult } from '../migrate/source.js';
import type { BlinkChanges } from '../guest/blink-device.js';
import { RoamError } from '../util/errors.js';

export type CompressMode = 'auto' | 'always' | 'never';

export type ControlRequest =
  | { op: 'status' }
  /** A viewer's long poll of /dev/blink's display state: what changed since (epoch, since). */
  | { op: 'blink'; epoch?: string; since?: number; waitMs: number }
  | {
      op: 'blink-input';
      input: { kind: number; x?: number; y?: number; buttons?: number; key?: number };
    }
  | { op: 'stop' }
  | {
      op: 'checkpoint';
      path: string;
      format: 'stream' | 'image';
      maxRounds?: number;
      verify: boolean;
    }
  | {
      op: 'migrate' | 'fork';
      to: string;
      maxDowntimeMs?: number;
      maxBandwidth?: number;
      throttle?: boolean;
      compress?: CompressMode;
      maxRounds?: number;
      /** The channel key, hex (default: the VM's own). */
      key?: string;
      verify: boolean;
      /** HOST:PORT of the home that arbitrates the commit. */
      home?: string;
      /** The commit window, ms. */
      windowMs?: number;
      /** Pull: `to` is where to serve this VM (http://to/v1/vm); whoever pulls it with the key gets it. */
      serve?: boolean;
    };

export interface RoundEvent extends RoundStats {
  event: 'round';
  rate?: number | null;
  compressing?: boolean;
}
export interface ProgressTick extends RoundProgress {
  event: 'progress';
}
export interface PhaseEvent {
  event: 'phase';
  message: string;
}
export interface CheckpointDone extends Omit<CheckpointResult, 'rounds'> {
  event: 'done';
  path: string;
  rounds: number;
}
export interface MigrateDone extends MigrateResult {
  event: 'done';
}
export interface StatusEvent {
  event: 'status';
  id: string;
  pid: number;
  processes: Array<{
    pid: number;
    argv: string[];
    status: string;
    exitCode: number | null;
    memoryPages: number;
  }>;
  stdoutBytes: number;
}
export interface StoppedEvent {
  event: 'stopped';
  id: string;
}
export interface ErrorEvent {
  event: 'error';
  message: string;
  code?: string;
}
export type ProgressEvent = RoundEvent | ProgressTick | PhaseEvent;
export interface BlinkEvent extends BlinkChanges {
  event: 'blink';
}
export type FinalEvent =
  BlinkEvent | CheckpointDone | MigrateDone | StatusEvent | StoppedEvent | ErrorEvent;
export type ControlEvent = ProgressEvent | FinalEvent;

const bad = (why: string): RoamError => new RoamError('bad-request', `bad control request: ${why}`);

function optNumber(r: Record<string, unknown>, k: string): number | undefined {
  const v = r[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw bad(`${k} must be a positive number`);
  return v;
}

function optBool(r: Record<string, unknown>, k: string): boolean | undefined {
  const v = r[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(`${k} must be true or false`);
  return v;
}

/** Check one request line, as sent by `roam checkpoint/migrate/fork/ps`. */
export function parseControlRequest(line: string): ControlRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw bad('not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not an object');
  const r = raw as Record<string, unknown>;
  switch (r.op) {
    case 'status':
      return { op: 'status' };
    case 'blink':
    case 'blink-input':
      return parseBlinkRequest(r);
    case 'stop':
      return { op: 'stop' };
    case 'checkpoint': {
      if (typeof r.path !== 'string' || !r.path.startsWith('/'))
        throw bad('checkpoint needs an absolute output path');
      if (r.format !== undefined && r.format !== 'stream' && r.format !== 'image')
        throw bad('format must be stream or image');
      const format = r.format === 'image' ? 'image' : 'stream';
      return {
        op: 'checkpoint',
        path: r.path,
        format,
        maxRounds: optNumber(r, 'maxRounds'),
        verify: optBool(r, 'verify') ?? false,
      };
    }
    case 'migrate':
    case 'fork': {
      if (typeof r.to !== 'string' || r.to === '')
        throw bad(`${r.op} needs a destination HOST:PORT`);
      if (
        r.compress !== undefined &&
        r.compress !== 'auto' &&
        r.compress !== 'always' &&
        r.compress !== 'never'
      )
        throw bad('compress must be auto, always or never');
      if (r.key !== undefined && (typeof r.key !== 'string' || !/^[0-9a-f]{64}$/.test(r.key)))
        throw bad('key must be 32 bytes in hex');
      if (r.home !== undefined && (typeof r.home !== 'string' || r.home.length > 300))
        throw bad('home must be HOST:PORT');
      return {
        op: r.op,
        to: r.to,
        maxDowntimeMs: optNumber(r, 'maxDowntimeMs'),
        maxBandwidth: optNumber(r, 'maxBandwidth'),
        throttle: optBool(r, 'throttle'),
        compress: r.compress,
        maxRounds: optNumber(r, 'maxRounds'),
        key: r.key,
        verify: optBool(r, 'verify') ?? false,
        home: r.home,
        windowMs: optNumber(r, 'windowMs'),
        serve: optBool(r, 'serve'),
      };
    }
    default:
      throw bad(`unknown op ${JSON.stringify(r.op)}`);
  }
}

const finite = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

/** The viewer's requests: a poll (at most 5 s long) or one input event. */
function parseBlinkRequest(r: Record<string, unknown>): ControlRequest {
  if (r.op === 'blink') {
    if (r.epoch !== undefined && (typeof r.epoch !== 'string' || !/^[0-9a-f]{1,32}$/.test(r.epoch)))
      throw bad('epoch must be hex');
    const since = finite(r.since);
    if (r.since !== undefined && (since === undefined || !Number.isInteger(since) || since < 0))
      throw bad('since must be a whole number');
    return {
      op: 'blink',
      epoch: r.epoch,
      since,
      waitMs: Math.min(5000, optNumber(r, 'waitMs') ?? 0),
    };
  }
  const i = r.input as Record<string, unknown> | null;
  const kind = finite(i?.kind);
  if (
    !i ||
    typeof i !== 'object' ||
    kind === undefined ||
    !Number.isInteger(kind) ||
    kind < 1 ||
    kind > 5
  )
    throw bad('input needs a kind from 1 to 5');
  return {
    op: 'blink-input',
    input: { kind, x: finite(i.x), y: finite(i.y), buttons: finite(i.buttons), key: finite(i.key) },
  };
}
