// /dev/checkpoint (thesis Figure 6.3): a program that reads it gets the checkpoint
// stream of its own VM, itself included. The page cleaner writes into a queue the
// reading program drains; when the queue is full the cleaner waits, so the stream
// advances at the pace of the program that carries it (to a file or a socket).
//
// A program may instead write a command, "migrate HOST:PORT" or "fork HOST:PORT",
// and then read: the kernel moves (or copies) the whole VM to that cstrap itself,
// over its encrypted channel, and the read returns 0 in the source once the
// destination has confirmed, -1 (ECANCELED) in the copy that arrived, or -1 (EIO)
// if it failed and the VM ran on here.
import { streamTarget } from '../format/index.js';
import { Errno, WasiError } from '../guest/errno.js';
import type { DeviceHooks, Kernel } from '../guest/kernel.js';
import { PageCleaner, type CleanerOptions } from './cleaner.js';

const HIGH_WATER = 4 << 20;

/** Carries out a migration or fork for a program (provided by the VM's session). */
export type MigrateHook = (kind: 'migration' | 'fork', to: string) => Promise<void>;

interface Session {
  /** A command session (migrate/fork) rather than a stream read. */
  command?: boolean;
  queue: Buffer[];
  queued: number;
  done: boolean;
  error: Error | null;
  drained: (() => void) | null;
}

export class CheckpointDevice implements DeviceHooks {
  private readonly sessions = new Map<number, Session>();

  constructor(
    private readonly kernel: Kernel,
    private readonly opts: CleanerOptions & { key?: Buffer; migrate?: MigrateHook } = {},
  ) {}

  /** A program wrote a command; returns false if it is not one we know. */
  command(id: number, text: string): boolean {
    const m = /^\s*(migrate|fork)\s+(\S+)\s*$/.exec(text);
    if (!m || this.sessions.has(id)) return false;
    const s: Session = {
      command: true,
      queue: [],
      queued: 0,
      done: false,
      error: null,
      drained: null,
    };
    this.sessions.set(id, s);
    const migrate = this.opts.migrate;
    setImmediate(() => {
      const run = migrate
        ? migrate(m[1] === 'fork' ? 'fork' : 'migration', m[2])
        : Promise.reject(new Error('this VM cannot migrate'));
      run.then(
        () => {
          s.done = true;
          this.kernel.wakeAll();
        },
        (err: Error) => {
          s.error = err;
          s.done = true;
          this.kernel.log(`/dev/checkpoint: ${err.message}`);
          this.kernel.wakeAll();
        },
      );
    });
    return true;
  }

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
      // No priority: the reading program must run to drain the stream.
      const cleaner = new PageCleaner(this.kernel, streamTarget(sink, { key: this.opts.key }), {
        ...this.opts,
        priority: false,
      });
      cleaner.run().then(
        () => {
          s.done = true;
          this.kernel.wakeAll();
        },
        (err: Error) => {
          s.error = err;
          s.done = true;
          this.kernel.log(`/dev/checkpoint: ${err.message}`);
          this.kernel.wakeAll();
        },
      );
    });
  }

  take(id: number, max: number): Uint8Array | null {
    const s = this.sessions.get(id);
    if (!s) return new Uint8Array(0);
    if (s.queue.length === 0) {
      if (!s.done) return null;
      // A failed checkpoint must not look like a complete one to the reader.
      if (s.error) {
        this.sessions.delete(id);
        throw new WasiError(Errno.IO, s.error.message);
      }
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
