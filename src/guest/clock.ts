// The VM's clocks. The monotonic clock continues from the source's value after a
// restore or migration, so a program never sees it go backwards.
export interface ClockState {
  monotonicNs: string;
}

export class Clock {
  /** Added to the host's monotonic clock. */
  private offset: bigint;

  constructor(saved?: ClockState) {
    this.offset = saved ? BigInt(saved.monotonicNs) - process.hrtime.bigint() : 0n;
  }
  monotonic(): bigint {
    return process.hrtime.bigint() + this.offset;
  }
  realtime(): bigint {
    return BigInt(Date.now()) * 1_000_000n;
  }
  save(): ClockState {
    return { monotonicNs: this.monotonic().toString() };
  }
}
