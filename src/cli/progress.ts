// Progress on stderr. On a terminal, one line redrawn in place while a round runs
// (pages, bytes, pages per second, the last round's WSS, an ETA for the round);
// elsewhere (a pipe, a log) only the lines that end a round, so logs stay readable.
import type { ProgressTick } from '../vm/control.js';
import { mib } from './options.js';

/** Seconds as people read an ETA: "8 s", "2 min 5 s". */
export const eta = (s: number): string =>
  s < 60 ? `${Math.ceil(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;

export class Progress {
  private live = false;
  private ticker: NodeJS.Timeout | undefined;
  /** The writable working set at the end of the last round (pages), once one has ended. */
  wss: number | null = null;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  /** A round's progress so far: redrawn in place on a terminal, dropped elsewhere. */
  tick(p: ProgressTick): void {
    if (!this.out.isTTY) return;
    const s = p.ms / 1000;
    const rate = s > 0 ? p.bytes / 1048576 / s : 0;
    const pps = s > 0 ? p.sent / s : 0;
    // The round ends when it has looked at every page of its transmit vectors.
    const left = p.of !== undefined && p.seen ? (s * (p.of - p.seen)) / p.seen : null;
    this.out.write(
      `\r\x1b[Kround ${p.round}: ${p.sent} pages, ${mib(p.bytes)}, ${rate.toFixed(0)} MiB/s, ${pps.toFixed(0)} pages/s` +
        `${this.wss === null ? '' : `, WSS ${this.wss}`}, ${s.toFixed(1)} s${left === null ? '' : `, ETA ${eta(left)}`}`,
    );
    this.live = true;
  }

  /**
   * While a module is prepared: on a terminal, the time so far redrawn in place,
   * with an ETA when one is known (`etaMs`, from earlier preparations), under
   * the lines that come meanwhile, until prepared().
   */
  preparing(etaMs: number | undefined, now = () => Date.now()): void {
    if (!this.out.isTTY) return;
    const t0 = now();
    const draw = (): void => {
      const s = (now() - t0) / 1000;
      const left = etaMs === undefined ? '' : `, ETA ${eta(Math.max(0, etaMs / 1000 - s))}`;
      this.out.write(`\r\x1b[Kroam: preparing: ${s.toFixed(0)} s${left}`);
      this.live = true;
    };
    this.ticker = setInterval(draw, 500);
    this.ticker.unref();
  }

  /** The preparation is over: no more redrawing. */
  prepared(): void {
    clearInterval(this.ticker);
  }

  /** A line that stays (a round's end, a phase). */
  line(text: string): void {
    if (this.live) this.out.write('\r\x1b[K');
    this.live = false;
    this.out.write(`${text}\n`);
  }
}
