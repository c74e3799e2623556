// TCP for guest programs: preopened listeners (`--tcplisten`) and outbound
// connections opened as paths under /net/tcp/HOST:PORT. Node's sockets are the
// host side; the kernel keeps what a checkpoint needs (addresses, buffered data),
// and after a restore a listener is re-opened while a connection reports a reset.
import net from 'node:net';
import { Errno, WasiError } from './errno.js';
import { parseHostPort } from '../util/address.js';
import type { RelayStream } from './relay.js';

export interface ListenerState {
  kind: 'listener';
  addr: string;
  /** Relayed streams waiting to be accepted (their state is the relay's). */
  queued?: number[];
}
export interface RelayedState {
  kind: 'relay';
  sid: number;
}
export interface ConnState {
  kind: 'conn';
  peer: string;
  recv: string;
  eof: boolean;
}
export type SocketState = ListenerState | ConnState | RelayedState;

/** A listener `home:PORT` is a published port: home accepts its clients and relays them. */
export const HOME_LISTENER = /^home:(\d{1,5})$/;

let announce: ((port: number) => void) | undefined;
/** Under the node daemon: each port a listener binds is announced, for the daemon to publish. */
export function onListening(fn: (port: number) => void): void {
  announce = fn;
}

export class Listener {
  readonly kind = 'listener';
  private server: net.Server | null = null;
  private readonly queue: Array<net.Socket | RelayStream> = [];
  private retry: NodeJS.Timeout | null = null;
  private retries = 0;
  boundAddr: string | null = null;

  constructor(
    readonly addr: string,
    private readonly onEvent: () => void,
    private readonly log: (m: string) => void,
  ) {}

  /** Listen; if the address is taken (e.g. the original VM still runs), keep retrying. */
  listen(mustSucceed: boolean): Promise<void> {
    if (this.homePort !== null) {
      this.boundAddr = this.addr; // nothing to bind on this host: home listens for it
      return Promise.resolve();
    }
    const { host, port } = parseHostPort(this.addr, { allowPortZero: true });
    return new Promise((resolve, reject) => {
      const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
        this.queue.push(s);
        this.onEvent();
      });
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (mustSucceed) return reject(new Error(`cannot listen on ${this.addr}: ${err.message}`));
        if (this.retries === 0)
          this.log(
            `listener ${this.addr}: ${err.code ?? err.message}; retrying until the address is free`,
          );
        // Retry fast at first: after a migration on one host the source lets go of
        // the port within milliseconds, and clients are waiting.
        this.retries++;
        this.retry = setTimeout(
          () => void this.listen(false).then(resolve, reject),
          this.retries < 500 ? 5 : 200,
        );
      });
      server.listen(port, host, () => {
        this.server = server;
        const a = server.address() as net.AddressInfo;
        this.boundAddr = `${a.address}:${a.port}`;
        announce?.(a.port);
        server.unref();
        resolve();
      });
    });
  }

  /** The published port this listener stands for, or null for a host socket. */
  get homePort(): number | null {
    const m = HOME_LISTENER.exec(this.addr);
    return m ? Number(m[1]) : null;
  }

  /** A relayed client (a checkpoint keeps it queued: see save). */
  push(s: RelayStream): void {
    this.queue.push(s);
    this.onEvent();
  }

  accept(): net.Socket | RelayStream | null {
    return this.queue.shift() ?? null;
  }
  get pending(): number {
    return this.queue.length;
  }
  close(): void {
    if (this.retry) clearTimeout(this.retry);
    this.server?.close();
    for (const s of this.queue) if (s instanceof net.Socket) s.destroy();
  }
  save(): ListenerState {
    const queued = this.queue.flatMap((s) => (s instanceof net.Socket ? [] : [s.sid]));
    return { kind: 'listener', addr: this.addr, ...(queued.length ? { queued } : {}) };
  }
}

export class Connection {
  readonly kind = 'conn';
  private readonly recvQ: Buffer[] = [];
  private recvBytes = 0;
  eof = false;
  error: number | null = null;
  /** Output held back while the VM is fenced (a migration's final phase). */
  private held: Buffer[] | null = null;

  constructor(
    readonly peer: string,
    readonly socket: net.Socket | null,
    private readonly onEvent: () => void,
  ) {
    if (!socket) {
      // Restored from a checkpoint: the host side of this connection is gone.
      this.error = Errno.CONNRESET;
      return;
    }
    // Programs write whole replies; Nagle's algorithm would add ~40 ms per exchange.
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.recvQ.push(d);
      this.recvBytes += d.length;
      onEvent();
    });
    socket.on('end', () => {
      this.eof = true;
      onEvent();
    });
    socket.on('error', () => {
      this.error = Errno.CONNRESET;
      onEvent();
    });
    socket.on('close', () => {
      this.eof = true;
      onEvent();
    });
    socket.resume();
  }

  static connect(addr: string, onEvent: () => void): Promise<Connection> {
    const { host, port } = parseHostPort(addr);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(new Connection(addr, s, onEvent));
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        const errno =
          err.code === 'ECONNREFUSED'
            ? Errno.CONNREFUSED
            : err.code === 'ETIMEDOUT'
              ? Errno.TIMEDOUT
              : Errno.HOSTUNREACH;
        reject(new WasiError(errno, err.message));
      });
    });
  }

  readable(): boolean {
    return this.recvBytes > 0 || this.eof || this.error !== null;
  }

  /** Copy up to dst.length bytes; null means "would block". */
  read(dst: Uint8Array, peek = false): number | null {
    if (this.recvBytes === 0) {
      if (this.error !== null) throw new WasiError(this.error);
      return this.eof ? 0 : null;
    }
    let n = 0;
    let i = 0;
    while (n < dst.length && i < this.recvQ.length) {
      const chunk = this.recvQ[i];
      const take = Math.min(chunk.length, dst.length - n);
      dst.set(chunk.subarray(0, take), n);
      n += take;
      if (!peek) {
        if (take === chunk.length) this.recvQ.shift();
        else {
          this.recvQ[0] = chunk.subarray(take);
          i++;
        }
      } else i++;
    }
    if (!peek) this.recvBytes -= n;
    return n;
  }

  write(src: Uint8Array): number {
    if (this.error !== null) throw new WasiError(this.error);
    if (!this.socket || this.socket.destroyed) throw new WasiError(Errno.PIPE);
    const copy = Buffer.from(src);
    if (this.held) this.held.push(copy);
    else this.socket.write(copy);
    return src.length;
  }

  shutdown(how: number): void {
    if (how & 2) this.socket?.end();
  }
  close(): void {
    this.socket?.end();
    this.socket?.destroySoon?.();
  }

  /** Hold output from now on (fencing, thesis 5.4). */
  fence(): void {
    this.held ??= [];
  }
  /** Release held output (the migration aborted: the source runs on). */
  unfence(): void {
    const held = this.held;
    this.held = null;
    if (held && this.socket && !this.socket.destroyed) for (const b of held) this.socket.write(b);
  }

  save(): ConnState {
    return {
      kind: 'conn',
      peer: this.peer,
      recv: Buffer.concat(this.recvQ).toString('base64'),
      eof: this.eof,
    };
  }
}

/** A connected stream: a host TCP connection or a connection home relays. */
export type Stream = Connection | RelayStream;
export type Socket = Listener | Stream;

export const isStream = (s: Socket | undefined): s is Stream =>
  s !== undefined && s.kind !== 'listener';

/** Queue a relayed client on the listener of its published port (false: the VM has none). */
export function acceptRelayed(
  sockets: Map<number, Socket>,
  port: number,
  st: RelayStream,
): boolean {
  for (const l of sockets.values())
    if (l instanceof Listener && l.homePort === port) {
      l.push(st);
      return true;
    }
  return false;
}
