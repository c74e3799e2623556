// /dev/checkpoint (thesis Figure 6.3): a program that reads it gets the checkpoint
// stream of its own VM, itself included. The page cleaner writes into a queue the
// reading program drains; when the queue is full the cleaner waits, so the stream
// advances at the pace of the program that carries it (to a file or a socket).
import { streamTarget } from '../format/index.js';
import { Errno, WasiError } from '../guest/errno.js';
import type { DeviceHooks, Kernel } from '../guest/kernel.js';
import { PageCleaner, type CleanerOptions } from './cleaner.js';

const HIGH_WATER = 4 << 20;

interface Session {
  queue: Buffer[];
  queued: number;
  done: boolean;
  error: Error | null;
  drained: (() => void) | null;
}

export class CheckpointDevice implements DeviceHooks {
  private readonly sessions = new Map<number, Session>();

  constructor(private readonly kernel: Kernel, private readonly opts: CleanerOptions & { key?: Buffer } = {}) {}

  startCheckpoint(id: number): void {
    const s: Session = { queue: [], queued: 0, done: false, error: null, drained: null };
    this.sessions.set(id, s);
    const sink = (chunk: Buffer): void | Promise<void> => {
      s.queue.push(chunk);
      s.queued += chunk.length;
      this.kernel.wakeAll();
      if (s.queued > HIGH_WATER) return new Promise((r) => (s.drained = r));
    };
    // Start from the event loop, never from inside the syscall that asked.
    setImmediate(() => {
      const cleaner = new PageCleaner(this.kernel, streamTarget(sink, { key: this.opts.key }), this.opts);
      cleaner.run().then(
        () => { s.done = true; this.kernel.wakeAll(); },
        (err: Error) => { s.error = err; s.done = true; this.kernel.log(`/dev/checkpoint: ${err.message}`); this.kernel.wakeAll(); },
      );
    });
  }

  take(id: number, max: number): Uint8Array | null {
    const s = this.sessions.get(id);
    if (!s) return new Uint8Array(0);
    if (s.queue.length === 0) {
      if (!s.done) return null;
      // A failed checkpoint must not look like a complete one to the reader.
      if (s.error) { this.sessions.delete(id); throw new WasiError(Errno.IO, s.error.message); }
      this.sessions.delete(id);
      return new Uint8Array(0);
    }
    const head = s.queue[0];
    const n = Math.min(head.length, max);
    if (n === head.length) s.queue.shift();
    else s.queue[0] = head.subarray(n);
    s.queued -= n;
    if (s.drained && s.queued <= HIGH_WATER / 2) {
      const d = s.drained;
      s.drained = null;
      d();
    }
    return head.subarray(0, n);
  }
}
