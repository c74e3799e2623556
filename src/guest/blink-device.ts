// /dev/blink: a program's display (thesis chapter 9). It writes BlinkGL records
// (src/blink/wire.ts: procedures, versioned shared objects, register updates) and
// reads the user's input events. The device keeps only the latest state (each
// object's newest version and the registers), and that state is guest-kernel
// state: it is in every checkpoint and moves with the VM, so a viewer that
// reconnects after the VM moved rebuilds the display from it without running any
// guest code (9.1.8). The records are hostile bytes: a bad one refuses the write.
import { randomBytes } from 'node:crypto';
import { recordMessage, stateMessage, type ViewerMessage } from '../blink/messages.js';
import { BlinkRefusal } from '../blink/ops.js';
import {
  applyRecord,
  emptyState,
  objFromWire,
  objToWire,
  parseRecords,
  type BlinkRecord,
  type BlinkState,
  type WireObject,
} from '../blink/wire.js';
import { Errno, WasiError } from './errno.js';

/** An input event as a program reads it: u32 kind, f32 x, f32 y, u32 key | buttons << 16. */
export const INPUT_BYTES = 16;
const MAX_QUEUED_INPUT = 256;
/** Changes kept for viewers that poll with `since` (older ones get the whole state). */
const LOG = 512;

export interface BlinkDeviceState {
  objects: WireObject[];
  regs: number[];
  updates: number;
}

export interface BlinkChanges {
  epoch: string;
  seq: number;
  /** The whole state first when the viewer is new, behind the log or from another epoch. */
  messages: ViewerMessage[];
}

export class BlinkDevice {
  state: BlinkState = emptyState();
  /** Changes since this kernel started (not saved: a restored VM is a new epoch). */
  seq = 0;
  readonly epoch = randomBytes(6).toString('hex');
  private readonly log: { r: BlinkRecord; updates: number }[] = [];
  private readonly input: Uint8Array[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(private readonly wake: () => void) {}

  /** A program's write: whole records, all applied or (on a refusal) none. */
  write(src: Uint8Array, log: (m: string) => void): number {
    let records: BlinkRecord[];
    try {
      records = parseRecords(src);
    } catch (e) {
      if (!(e instanceof BlinkRefusal)) throw e;
      log(`/dev/blink: ${e.message}`);
      throw new WasiError(Errno.INVAL, e.message);
    }
    for (const r of records) {
      try {
        if (!applyRecord(this.state, r)) continue;
      } catch (e) {
        if (!(e instanceof BlinkRefusal)) throw e;
        log(`/dev/blink: ${e.message}`);
        throw new WasiError(Errno.NOSPC, e.message);
      }
      this.seq++;
      this.log.push({ r, updates: this.state.updates });
      if (this.log.length > LOG) this.log.shift();
    }
    for (const w of this.waiters) w();
    this.waiters.clear();
    return src.length;
  }

  /** Input events for the program; null = none yet (the read blocks). */
  read(dst: Uint8Array): number | null {
    if (this.input.length === 0) return null;
    let n = 0;
    while (this.input.length && n + INPUT_BYTES <= dst.length) {
      dst.set(this.input.shift()!, n);
      n += INPUT_BYTES;
    }
    if (n === 0) throw new WasiError(Errno.INVAL, 'read /dev/blink with room for one event');
    return n;
  }

  /** A user's input from a viewer (the oldest are dropped beyond the queue's limit). */
  pushInput(e: { kind: number; x?: number; y?: number; buttons?: number; key?: number }): void {
    const b = new Uint8Array(INPUT_BYTES);
    const v = new DataView(b.buffer);
    v.setUint32(0, e.kind, true);
    v.setFloat32(4, e.x ?? 0, true);
    v.setFloat32(8, e.y ?? 0, true);
    v.setUint32(12, ((e.key ?? 0) & 0xffff) | (((e.buttons ?? 0) & 0xffff) << 16), true);
    this.input.push(b);
    if (this.input.length > MAX_QUEUED_INPUT) this.input.shift();
    this.wake();
  }

  /** What a viewer at (epoch, since) is missing; waits up to `waitMs` for a change first. */
  async changes(epoch: string | undefined, since: number | undefined, waitMs: number) {
    if (epoch === this.epoch && since === this.seq && waitMs > 0)
      await new Promise<void>((r) => {
        const t = setTimeout(done, waitMs);
        function done() {
          clearTimeout(t);
          r();
        }
        this.waiters.add(done);
      });
    const behind = since === undefined ? -1 : this.seq - since;
    const whole = epoch !== this.epoch || behind < 0 || behind > this.log.length;
    const messages = whole
      ? [stateMessage(this.state, this.epoch)]
      : this.log.slice(this.log.length - behind).map((r) => recordMessage(r.r, r.updates));
    const out: BlinkChanges = { epoch: this.epoch, seq: this.seq, messages };
    return out;
  }

  toJSON(): BlinkDeviceState {
    return { ...this.state, objects: this.state.objects.map(objToWire) };
  }

  static restore(s: BlinkDeviceState | undefined, wake: () => void): BlinkDevice {
    const d = new BlinkDevice(wake);
    if (s) d.state = { objects: s.objects.map(objFromWire), regs: s.regs, updates: s.updates };
    return d;
  }
}
