// Progress on stderr. On a terminal, one line redrawn in place while a round runs
// (pages, bytes, rate); elsewhere (a pipe, a log) only the lines that end a round,
// so logs stay readable.
import type { ProgressTick } from '../vm/control.js';
import { mib } from './options.js';

export class Progress {
  private live = false;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  /** A round's progress so far: redrawn in place on a terminal, dropped elsewhere. */
  tick(p: ProgressTick): void {
    if (!this.out.isTTY) return;
    const rate = p.ms > 0 ? p.bytes / 1048576 / (p.ms / 1000) : 0;
    this.out.write(
      `\r\x1b[Kround ${p.round}: ${p.sent} pages, ${mib(p.bytes)}, ${rate.toFixed(0)} MiB/s, ${(p.ms / 1000).toFixed(1)} s`,
    );
    this.live = true;
  }

  /** A line that stays (a round's end, a phase). */
  line(text: string): void {
    if (this.live) this.out.write('\r\x1b[K');
    this.live = false;
    this.out.write(`${text}\n`);
  }
}
