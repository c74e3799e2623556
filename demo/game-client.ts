// A client of examples/game-server.wasm that checks every reply: it keeps the
// server's per-client checksum itself, so a message lost, applied twice or
// reordered on the way shows at the next reply. It records each reply's round
// trip, so the demo and bench/home.ts can show the largest gap a migration caused.
import net from 'node:net';
import readline from 'node:readline';

/** The game server's running checksum of one client id (examples/game-server.c). */
const step = (h: number, seq: number, id: number): number =>
  (Math.imul((h ^ seq) >>> 0, 16777619) ^ id) >>> 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class GameClient {
  readonly sock: net.Socket;
  private sent = 0;
  got = 0;
  private h = 2166136261;
  private readonly sentAt: number[] = [];
  /** performance.now() of each reply and its round trip (ms). */
  readonly replies: Array<{ at: number; rtt: number }> = [];
  closed = false;
  error: string | null = null;

  constructor(
    port: number,
    readonly id: number,
    host = '127.0.0.1',
  ) {
    this.sock = net.connect(port, host);
    this.sock.setNoDelay(true);
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('error', (e) => (this.error ??= e.message));
    readline
      .createInterface({ input: this.sock })
      .on('line', (l) => this.onLine(l))
      .on('error', () => undefined); // the socket's own handler has it
  }

  private onLine(l: string): void {
    this.h = step(this.h, this.got, this.id);
    const want = `${this.got} ${this.h.toString(16).padStart(8, '0')}`;
    if (l !== want) {
      this.error ??= `client ${this.id}: reply ${this.got} was "${l}", not "${want}"`;
      return;
    }
    const at = performance.now();
    this.replies.push({ at, rtt: at - this.sentAt[this.got] });
    this.got++;
  }

  /** The largest round trip of a reply that came in [from, to] (performance.now()). */
  maxRtt(from: number, to = Infinity): number {
    let m = 0;
    for (const r of this.replies) if (r.at >= from && r.at <= to) m = Math.max(m, r.rtt);
    return m;
  }

  /** Keep up to `inFlight` messages unanswered (pausing `everyMs` between rounds) until stop(). */
  run(inFlight = 4, everyMs = 2): { stop: () => Promise<void> } {
    let on = true;
    const loop = (async () => {
      while (on && !this.closed && !this.error) {
        while (this.sent - this.got < inFlight) {
          this.sentAt.push(performance.now());
          this.sock.write(`${this.id} ${this.sent++}\n`);
        }
        await sleep(everyMs);
      }
      const t0 = Date.now();
      while (this.got < this.sent && !this.error && !this.closed && Date.now() - t0 < 30_000)
        await sleep(5);
      if (this.got < this.sent)
        this.error ??= `client ${this.id}: ${this.sent - this.got} replies missing`;
    })();
    return {
      stop: async () => {
        on = false;
        await loop;
      },
    };
  }
}
