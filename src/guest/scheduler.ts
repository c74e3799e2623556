// Time-slice scheduler. The guest runs on the VM process' main thread; each slice
// ends at a safepoint poll (or a blocking syscall) by unwinding the program, so
// between slices Node's event loop runs: sockets, timers, the control socket and
// the page cleaner all get their turn, and every process is at a safepoint.
import type { Process } from './process.js';

export class Scheduler {
  sliceMs = 10;
  /** Deadline of the running slice, checked by the safepoint poll. */
  sliceEnd = 0;
  private scheduled = false;
  private next = 0;
  /** Processes the page cleaner has paused (throttling) or the kernel has frozen. */
  readonly paused = new Set<number>();
  current: Process | null = null;

  constructor(
    private readonly processes: () => Process[],
    private readonly onError: (p: Process, err: unknown) => void,
    private readonly onIdle: () => void,
  ) {}

  kick(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.tick());
  }

  private runnable(): Process[] {
    return this.processes().filter((p) => (p.status === 'new' || p.status === 'runnable') && !this.paused.has(p.pid));
  }

  private tick(): void {
    this.scheduled = false;
    const ready = this.runnable();
    if (ready.length === 0) {
      if (this.processes().every((p) => p.status === 'exited')) this.onIdle();
      return;
    }
    const p = ready[this.next++ % ready.length];
    this.current = p;
    this.sliceEnd = performance.now() + this.sliceMs;
    try {
      p.runSlice();
    } catch (err) {
      this.onError(p, err);
    } finally {
      this.current = null;
    }
    this.kick();
  }
}
