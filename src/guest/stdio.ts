// The VM's standard streams: its programs share the VM process' stdin, stdout and
// stderr. Output is held back while the VM is fenced (thesis 5.4), a program that
// writes faster than the reader of a pipe takes waits (so nothing is lost or piled
// up in memory), and a reader that went away (`| head`) ends the writer as SIGPIPE
// ends a normal program.
import type { Writable } from 'node:stream';

/** Bytes queued towards a slow reader before a writing program has to wait. */
const HIGH_WATER = 1 << 20;
/** Exit status of a program ended by SIGPIPE (128 + 13), as a shell reports it. */
export const SIGPIPE_STATUS = 141;

type Sink = (b: Uint8Array) => void;

export interface StdioOptions {
  stdout?: Sink;
  stderr?: Sink;
}

export class Stdio {
  stdoutBytes = 0;
  stderrBytes = 0;
  /** Output held back while fenced: [fd, bytes]. */
  private held: Array<[1 | 2, Buffer]> | null = null;
  private readonly stdinQ: Buffer[] = [];
  private stdinEof = false;
  private stdinAttached = false;
  /** The reader of this stream is gone (EPIPE). */
  private readonly broken = { 1: false, 2: false };
  private watching = false;

  constructor(
    private readonly opts: StdioOptions,
    /** Something changed (input, a drained pipe): blocked programs retry. */
    private readonly wake: () => void,
  ) {}

  /** The Node stream behind fd 1 or 2, unless the VM was given its own sink. */
  private stream(fd: 1 | 2): Writable | null {
    if (fd === 1 ? this.opts.stdout : this.opts.stderr) return null;
    return fd === 1 ? process.stdout : process.stderr;
  }

  /** Install, once, what keeps a closed or slow pipe from crashing or flooding the VM. */
  private watch(): void {
    if (this.watching) return;
    this.watching = true;
    for (const fd of [1, 2] as const) {
      const s = this.stream(fd);
      if (!s) continue;
      s.on('error', () => {
        this.broken[fd] = true;
        this.wake();
      });
      s.on('drain', () => this.wake());
    }
  }

  /** A write to `fd` now would have to wait for the reader. */
  full(fd: 1 | 2): boolean {
    const s = this.stream(fd);
    return this.held === null && !this.broken[fd] && s !== null && s.writableLength > HIGH_WATER;
  }
  /** The reader of `fd` has gone away. */
  closed(fd: 1 | 2): boolean {
    return this.broken[fd];
  }

  write(fd: 1 | 2, b: Uint8Array): void {
    if (fd === 1) this.stdoutBytes += b.length;
    else this.stderrBytes += b.length;
    if (this.held) this.held.push([fd, Buffer.from(b)]);
    else this.send(fd, b);
  }

  private send(fd: 1 | 2, b: Uint8Array): void {
    const sink = fd === 1 ? this.opts.stdout : this.opts.stderr;
    if (sink) return sink(b);
    this.watch();
    // A copy: `b` may be a view of the program's memory, which it reuses before a
    // queued write reaches the pipe.
    if (!this.broken[fd]) this.stream(fd)!.write(Buffer.from(b));
  }

  /** Resolves once everything written so far has reached the OS (or its reader is gone). */
  drained(): Promise<void> {
    const waits = ([1, 2] as const).map(
      (fd) =>
        new Promise<void>((resolve) => {
          const s = this.stream(fd);
          if (!s || this.broken[fd] || s.writableLength === 0) return resolve();
          s.once('error', () => resolve());
          s.write('', () => resolve());
        }),
    );
    return Promise.all(waits).then(() => undefined);
  }

  /** Bytes from the VM process' stdin; null = none yet (block), 0 = EOF. */
  readStdin(dst: Uint8Array): number | null {
    if (!this.stdinAttached) {
      this.stdinAttached = true;
      process.stdin.on('data', (d: Buffer) => {
        this.stdinQ.push(d);
        this.wake();
      });
      const eof = () => {
        this.stdinEof = true;
        this.wake();
      };
      process.stdin.on('end', eof);
      process.stdin.on('error', eof);
    }
    if (this.stdinQ.length === 0) return this.stdinEof ? 0 : null;
    const chunk = this.stdinQ[0];
    const n = Math.min(chunk.length, dst.length);
    dst.set(chunk.subarray(0, n));
    if (n === chunk.length) this.stdinQ.shift();
    else this.stdinQ[0] = chunk.subarray(n);
    return n;
  }

  get fenced(): boolean {
    return this.held !== null;
  }
  fence(): void {
    this.held ??= [];
  }
  /** Release what was held, in order. */
  unfence(): void {
    const held = this.held;
    this.held = null;
    for (const [fd, b] of held ?? []) this.send(fd, b);
  }
}
