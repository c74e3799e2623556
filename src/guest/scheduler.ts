// Time-slice scheduler. The guest runs on the VM process' main thread; each slice
// ends at a safepoint poll (or a blocking syscall) by unwinding the program, so
// between slices Node's event loop runs: sockets, timers, the control socket and
// the page cleaner all get their turn, and every process is at a safepoint.
import type { Process } from './process.js';

const HOLD_GRACE_MS = 1;
/**
 * A throttled process rests at least this long per step of slowing after each
 * slice. An I/O-bound program (a server) runs slices far shorter than 10 ms:
 * resting in proportion to them alone would not slow its dirtying at all, and
 * only pausing it would, which its clients see as a long silence.
 */
const THROTTLE_REST_MS = 2.5;
/**
 * A slice that runs while the page cleaner holds the CPU and waits on its target:
 * short, so that a server answers its clients during a migration's rounds and the
 * cleaner has the CPU back as soon as its link drains.
 */
const HELD_SLICE_MS = 2;

export class Scheduler {
  sliceMs = 10;
  /** Deadline of the running slice, checked by the safepoint poll. */
  sliceEnd = 0;
  private scheduled = false;
  private next = 0;
  /** Processes the page cleaner has paused (throttling) or the kernel has frozen. */
  readonly paused = new Set<number>();
  /** Throttled processes: pid -> n, the process gets one slice's worth of time in n. */
  readonly slow = new Map<number, number>();
  /** A throttled process rests until this time (performance.now()) after its slice. */
  private readonly restUntil = new Map<number, number>();
  private wakeTimer: NodeJS.Timeout | null = null;
  current: Process | null = null;
  /** While held, no slice starts: the page cleaner has the CPU (see PageCleaner). */
  private held = false;
  /** Length of the last slice in ms: a program may overrun its 10 ms up to its next safepoint. */
  lastSliceMs = 0;
  /**
   * The programs' share of the wall clock over the last half second or more of
   * slices: low for a server that answers and blocks, near 1 for a program that computes.
   */
  duty = 0;
  private busyMs = 0;
  private dutyFrom = performance.now();
  /** Called once, just before the first slice runs (a migration's "first instruction"). */
  onFirstSlice: (() => void) | null = null;

  constructor(
    private readonly processes: () => Process[],
    private readonly onError: (p: Process, err: unknown) => void,
    private readonly onIdle: () => void,
  ) {}

  /**
   * The page cleaner has the CPU: while it waits on its target, a short slice
   * starts only after a grace of waiting (see holdGrace: a fast link drains
   * sooner; a slow one should not stop the programs).
   */
  hold(strict = false): void {
    this.held = true;
    this.strict = strict;
    this.heldAt = performance.now();
  }
  release(): void {
    this.held = false;
    this.kick();
  }
  private heldAt = 0;
  /**
   * How long the holding cleaner keeps the CPU before a slice may run: at least
   * HOLD_GRACE_MS, and twice the last slice, so that while it waits on its target
   * the programs get at most a third of the CPU (a program that dirties memory flat
   * out would otherwise outrun the cleaner's first round by an order of magnitude).
   */
  private holdGrace(): number {
    return Math.max(HOLD_GRACE_MS, 2 * this.lastSliceMs);
  }
  /** Held without grace: no slice at all until release (a migration's last sends after the freeze). */
  private strict = false;
  private graceTimer: NodeJS.Timeout | null = null;

  kick(): void {
    if (this.scheduled) return;
    if (this.held) {
      if (this.strict) return;
      // The cleaner has had the CPU for a grace and is still waiting: a slice may run.
      const left = this.heldAt + this.holdGrace() - performance.now();
      if (left > 0) {
        this.graceTimer ??= setTimeout(() => {
          this.graceTimer = null;
          this.kick();
        }, left);
        return;
      }
    }
    this.scheduled = true;
    setImmediate(() => this.tick());
  }

  private runnable(): Process[] {
    return this.processes().filter(
      (p) => (p.status === 'new' || p.status === 'runnable') && !this.paused.has(p.pid),
    );
  }

  private tick(): void {
    this.scheduled = false;
    if (this.held && (this.strict || performance.now() - this.heldAt < this.holdGrace()))
      return this.kick();
    const now = performance.now();
    const runnable = this.runnable();
    const ready = runnable.filter((p) => !((this.restUntil.get(p.pid) ?? 0) > now));
    if (ready.length === 0) {
      if (runnable.length > 0) {
        // Only resting (throttled) processes: come back when the first may run.
        const at = Math.min(...runnable.map((p) => this.restUntil.get(p.pid)!));
        if (!this.wakeTimer)
          this.wakeTimer = setTimeout(
            () => {
              this.wakeTimer = null;
              this.kick();
            },
            Math.max(1, at - now),
          );
      } else if (this.processes().every((p) => p.status === 'exited')) this.onIdle();
      return;
    }
    const p = ready[this.next++ % ready.length];
    this.current = p;
    this.sliceEnd = now + (this.held ? HELD_SLICE_MS : this.sliceMs);
    if (this.onFirstSlice) {
      const f = this.onFirstSlice;
      this.onFirstSlice = null;
      f();
    }
    try {
      p.runSlice();
    } catch (err) {
      this.onError(p, err);
    } finally {
      this.current = null;
    }
    const end = performance.now();
    this.lastSliceMs = end - now;
    this.busyMs += this.lastSliceMs;
    if (end - this.dutyFrom >= 500) {
      this.duty = this.busyMs / (end - this.dutyFrom);
      this.busyMs = 0;
      this.dutyFrom = end;
    }
    // The cleaner, if it still holds the CPU, gets the next turn.
    this.heldAt = end;
    const n = this.slow.get(p.pid);
    if (n)
      this.restUntil.set(
        p.pid,
        performance.now() + Math.max(this.lastSliceMs, THROTTLE_REST_MS) * (n - 1),
      );
    else this.restUntil.delete(p.pid);
    this.kick();
  }
}
