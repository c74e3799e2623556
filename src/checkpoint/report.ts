// What a page cleaner is asked to do, and what it reports: per round, within a
// round, and at the end.
import type { CheckpointKind } from '../format/index.js';

export interface CleanerOptions {
  kind?: CheckpointKind;
  /** Give up pre-copying after this many rounds and freeze anyway. */
  maxRounds?: number;
  /** Snapshot-buffer size in pages at round 1, and its growth per round. */
  bufferStart?: number;
  bufferStep?: number;
  /** Pages per batch handed to the target. */
  batchPages?: number;
  /** The cleaner works this long before the programs get a time slice (thesis: the
   *  cleaner is a kernel thread sharing the CPU with them). */
  workMs?: number;
  /** The cleaner's turn instead of workMs while the programs use little of the CPU (they
   *  block more than they compute: a server, whose clients wait out each turn). */
  shortWorkMs?: number;
  onRound?: (r: RoundStats) => void;
  /** Within a round, at most every 250 ms: how far it has got (a long round is not silent). */
  onProgress?: (p: RoundProgress) => void;
  /** At the freeze, hash every page of live memory and check the cleaner's view of it (tests). */
  verifyAtFreeze?: boolean;
  /** Hold back outbound traffic from the freeze point on (migration). */
  fence?: boolean;
  /** On failure leave the VM fenced: its caller unfences once the migration's arbiter has aborted. */
  keepFencedOnError?: boolean;
  /** Largest snapshot buffer in pages (a function: it may depend on the measured link). */
  bufferLimit?: number | (() => number);
  /** Slow down and then pause the programs that dirty most when the WSS stops shrinking. */
  throttle?: boolean;
  /** Abort rather than freeze with a WSS above the buffer limit (migration); a disk checkpoint freezes anyway. */
  strict?: boolean;
  /**
   * The cleaner keeps the CPU while it waits for its target, instead of letting a
   * program slice run at every write (a kernel thread with priority). Not for
   * /dev/checkpoint, whose target is drained by a program.
   */
  priority?: boolean;
  /** The freeze waits for this (a migration's rehearsal, src/migrate/rehearsal.ts), with more rounds meanwhile. */
  beforeFreeze?: Promise<unknown>;
}

export interface RoundProgress {
  round: number;
  /** Pages sent so far in this round, and bytes out since it began. */
  sent: number;
  bytes: number;
  ms: number;
  /** Pages of the round's transmit vectors looked at so far, and in all (for an ETA). */
  seen?: number;
  of?: number;
}

export interface RoundStats {
  round: number;
  sent: number;
  postponed: number;
  /** Pages dirty at the end of the round: the writable working set. */
  wss: number;
  buffer: number;
  bytes: number;
  ms: number;
  /** Throttled processes after this round: pid -> "1/2" ... "paused". */
  throttled: Record<number, string>;
}

export interface CheckpointResult {
  rounds: RoundStats[];
  /** Pages copied in the final phase, while frozen. */
  snapshotPages: number;
  downtimeMs: number;
  totalMs: number;
  bytes: number;
  pagesSent: number;
  kernelBytes: number;
}
