// Link rates: parsing --max-bandwidth, pacing a sender to it, and measuring what
// the link actually drains.

import { parseBandwidth } from '../util/quantity.js';

/** "100Mbit", "12.5MB", "1Gbit/s", "800k" (bytes) -> bytes per second (the one quantity parser's). */
export const parseRate = (s: string): number => parseBandwidth(s);

export const formatRate = (bytesPerSec: number): string =>
  bytesPerSec >= 1e9 / 8
    ? `${((bytesPerSec * 8) / 1e9).toFixed(2)} Gbit/s`
    : `${((bytesPerSec * 8) / 1e6).toFixed(1)} Mbit/s`;

/** Paces writes to at most `rate` bytes per second (sleeping between them). */
export class Pacer {
  private next = 0;
  constructor(private readonly rate: number) {}
  async take(bytes: number): Promise<void> {
    const now = performance.now();
    this.next = Math.max(this.next, now) + (bytes / this.rate) * 1000;
    const wait = this.next - now - (bytes / this.rate) * 1000;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  }
}

/** Throughput of a link while the sender keeps it busy: bytes over the time spent sending. */
export class RateMeter {
  private bytes = 0;
  private ms = 0;
  add(bytes: number, ms: number): void {
    this.bytes += bytes;
    this.ms += ms;
  }
  /** Bytes per second, or null before enough has been seen to tell. */
  get rate(): number | null {
    return this.bytes >= 1 << 20 && this.ms > 0 ? (this.bytes / this.ms) * 1000 : null;
  }
}
