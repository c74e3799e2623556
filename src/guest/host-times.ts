// Nanosecond timestamps for host folders. Node sets a file's times from a double
// of seconds, which cannot carry every nanosecond of a WASI timestamp; so the times
// a program set are remembered in full and reported for as long as the host still
// shows the value that setting them left there (a later change on the host wins).
type Which = 'atim' | 'mtim';

interface Exact {
  /** What the host reports after the set. */
  host: bigint;
  /** What the program asked for. */
  exact: bigint;
}

export class ExactTimes {
  private readonly set = new Map<string, Partial<Record<Which, Exact>>>();

  /** Remember that `exact` was asked for the file `key`, and the host now shows `host`. */
  remember(key: string, which: Which, exact: bigint, host: bigint): void {
    const e = this.set.get(key) ?? {};
    e[which] = { host, exact };
    this.set.set(key, e);
  }

  /** The time to report for `key`, given what the host shows now. */
  report(key: string, which: Which, host: bigint): bigint {
    const e = this.set.get(key)?.[which];
    return e && e.host === host ? e.exact : host;
  }
}
