// Throttling (thesis 6.6.6, Figure 6.6): when the programs dirty pages faster than
// the cleaner can send them, the writable working set never fits in the snapshot
// buffer. Each step gives the worst offender half as many time slices as before,
// and the last step pauses it (at a safepoint: the scheduler simply stops picking
// it) until the freeze. A migration converges instead of looping or aborting.
import type { Scheduler } from '../guest/scheduler.js';

/** Slice divisors per step; after the last one the process is paused. */
const STEPS = [2, 4, 8];

export class Throttle {
  private readonly step = new Map<number, number>();

  constructor(private readonly scheduler: Scheduler) {}

  /** Processes slowed or paused so far, pid -> "1/2", "1/4", ... or "paused". */
  describe(): Record<number, string> {
    const out: Record<number, string> = {};
    for (const [pid, s] of this.step) out[pid] = s < STEPS.length ? `1/${STEPS[s]}` : 'paused';
    return out;
  }

  get active(): boolean {
    return this.step.size > 0;
  }

  /**
   * Throttle the process that dirtied most pages one step further.
   * @param dirtyByPid pages each process left dirty in the last round
   * @returns false when every dirtying process is already paused
   */
  tighten(dirtyByPid: Map<number, number>): boolean {
    const worst = [...dirtyByPid]
      .filter(([pid, n]) => n > 0 && (this.step.get(pid) ?? -1) < STEPS.length)
      .sort((a, b) => b[1] - a[1])[0];
    if (!worst) return false;
    const pid = worst[0];
    const s = (this.step.get(pid) ?? -1) + 1;
    this.step.set(pid, s);
    if (s < STEPS.length) this.scheduler.slow.set(pid, STEPS[s]);
    else {
      this.scheduler.slow.delete(pid);
      this.scheduler.paused.add(pid);
    }
    return true;
  }

  /** Give every throttled process its full share again. */
  release(): void {
    for (const pid of this.step.keys()) {
      this.scheduler.slow.delete(pid);
      this.scheduler.paused.delete(pid);
    }
    this.step.clear();
    this.scheduler.kick();
  }
}
