// Home's end of the relayed connections of one job (src/guest/relay.ts is the
// VM's). Home is the TCP endpoint its clients reach; it keeps every byte a
// client sent until the VM has taken it (the replay buffer), and the offset of
// every byte the VM sent that it has passed on, so that whichever copy of the
// VM calls next resumes each stream exactly where that copy's state left it.
import net from 'node:net';
import {
  encodeRelay,
  Home,
  MAX_RELAY_CHUNK,
  type Hello,
  type RelayFrame,
  type Welcome,
} from '../guest/home-wire.js';
import { RELAY_WINDOW } from '../guest/relay.js';
import { ByteQueue } from '../util/byte-queue.js';

export interface SessionLink {
  send(type: number, payload: Buffer): void;
}

class ClientStream {
  /** Client bytes from offset `acked` (the VM has taken those before) up to `next`. */
  readonly toVm = new ByteQueue();
  acked = 0;
  next = 0;
  sent = 0;
  clientEnded = false;
  finSent = false;
  finAcked = false;
  /** VM bytes passed on to the client, and where the VM's bytes end (its FIN). */
  delivered = 0;
  vmFin: number | null = null;
  opened = false;
  /** The last offset acknowledged to the VM: it may send up to RELAY_WINDOW past it, no further. */
  ackSent = 0;

  constructor(
    public sid: number,
    readonly port: number,
    readonly socket: net.Socket,
  ) {}

  get peer(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }
  /**
   * What home acknowledges to the VM: what the client's socket has taken (not what
   * waits in its buffer, so a client that reads slowly holds the VM back and home
   * buffers at most a window), and the end too once every byte before it went.
   */
  get ackSeq(): number {
    const flushed = this.delivered - this.socket.writableLength;
    return flushed + (this.vmFin !== null && flushed >= this.vmFin ? 1 : 0);
  }
  drop(upTo: number): void {
    const n = Math.min(upTo, this.next) - this.acked;
    if (n <= 0) return;
    this.acked += n;
    this.toVm.skip(n);
  }
}

export class JobRelay {
  private readonly streams = new Map<number, ClientStream>();
  private readonly servers: net.Server[] = [];
  private session: SessionLink | null = null;
  private nextSid = 0;
  private acking = new Set<ClientStream>();
  private ackTimer: NodeJS.Immediate | null = null;
  /** Bytes relayed each way, and streams seen (for `roam jobs`). */
  stats = { toVm: 0, fromVm: 0, streams: 0 };

  constructor(
    readonly job: string,
    private readonly log: (m: string) => void,
  ) {}

  get attached(): boolean {
    return this.session !== null;
  }
  get open(): number {
    return this.streams.size;
  }

  /** Listen for clients on a published port (HOST:PORT here, `home:guest` in the VM). */
  publish(host: string, port: number, guest: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true }, (sock) => this.client(sock, guest));
      server.once('error', reject);
      server.listen(port, host, () => {
        const a = server.address() as net.AddressInfo;
        this.servers.push(server);
        resolve(`${a.address}:${a.port}`);
      });
    });
  }

  private client(socket: net.Socket, guest: number): void {
    socket.setNoDelay(true);
    const s = new ClientStream(++this.nextSid, guest, socket);
    this.streams.set(s.sid, s);
    this.stats.streams++;
    socket.on('data', (d: Buffer) => {
      s.toVm.push(d);
      s.next += d.length;
      this.stats.toVm += d.length;
      if (s.next - s.acked >= RELAY_WINDOW) socket.pause();
      this.pump(s);
    });
    socket.on('end', () => {
      s.clientEnded = true;
      this.pump(s);
    });
    socket.on('drain', () => this.ackLater(s));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', (hadError) => {
      if (!this.streams.has(s.sid)) return;
      if (hadError || !s.clientEnded) {
        // The client is gone without a clean end: the VM's side is reset.
        this.session?.send(Home.RST, encodeRelay(s.sid, 0));
        this.streams.delete(s.sid);
      } else this.maybeForget(s);
    });
    this.pump(s);
  }

  /** Send the VM what it may take now: the OPEN, bytes within its window, the end. */
  private pump(s: ClientStream): void {
    const link = this.session;
    if (!link) return;
    if (!s.opened) {
      link.send(Home.OPEN, Buffer.from(JSON.stringify({ sid: s.sid, port: s.port, peer: s.peer })));
      s.opened = true;
    }
    const limit = Math.min(s.next, s.acked + RELAY_WINDOW);
    let at = s.acked;
    for (const c of s.toVm.each()) {
      const end = at + c.length;
      if (end > s.sent && at < limit) {
        const part = c.subarray(Math.max(0, s.sent - at), Math.min(c.length, limit - at));
        for (let o = 0; o < part.length; o += MAX_RELAY_CHUNK) {
          const chunk = part.subarray(o, o + MAX_RELAY_CHUNK);
          link.send(Home.DATA, encodeRelay(s.sid, s.sent, chunk));
          s.sent += chunk.length;
        }
      }
      at = end;
    }
    if (s.clientEnded && !s.finSent && s.sent === s.next) {
      link.send(Home.FIN, encodeRelay(s.sid, s.next));
      s.finSent = true;
    }
  }

  /** A session for this job said HELLO: it becomes the one, and every stream resumes from its state. */
  attach(link: SessionLink, h: Hello, token: string): Welcome {
    this.session = link;
    const vm = new Map(h.streams.map((x) => [x.sid, x]));
    let max = Math.max(this.nextSid, h.maxSid);
    for (const s of [...this.streams.values()]) {
      const v = vm.get(s.sid);
      if (v) {
        // Resend from what that copy holds; keep the rest until it acknowledges reading it
        // (its window is counted from what it read, not from what it holds).
        s.sent = Math.max(s.acked, Math.min(v.recvNext, s.next));
        s.finSent = s.finAcked;
        s.opened = true;
      } else if (s.sid > h.maxSid) {
        // This copy never heard of it: offer it again from the start (nothing of it was taken).
        s.sent = s.acked;
        s.opened = s.finSent = false;
      } else if (!s.opened) {
        // Numbered while no VM was attached, below what this VM has seen: renumber (no VM knows it).
        this.streams.delete(s.sid);
        s.sid = ++max;
        this.streams.set(s.sid, s);
      } else {
        // The VM is done with it (closed, or reset in a fork): so is home.
        s.socket.destroy();
        this.streams.delete(s.sid);
      }
    }
    this.nextSid = max;
    const streams = [...this.streams.values()]
      .filter((s) => vm.has(s.sid))
      .map((s) => {
        // WELCOME acknowledges this much: the VM's window runs from there.
        s.ackSent = Math.max(s.ackSent, s.delivered);
        return {
          sid: s.sid,
          recvNext: s.vmFin !== null && s.delivered >= s.vmFin ? s.vmFin + 1 : s.delivered,
        };
      });
    setImmediate(() => {
      if (this.session === link) for (const s of this.streams.values()) this.pump(s);
    });
    return { token, streams };
  }

  /** That session ended (a newer one may have taken over already). */
  detach(link: SessionLink): void {
    if (this.session === link) this.session = null;
  }

  onFrame(link: SessionLink, type: number, f: RelayFrame): void {
    if (link !== this.session) return; // an older copy of the VM (fenced, or handed on): not heard
    const s = this.streams.get(f.sid);
    if (!s) {
      if (type !== Home.RST) link.send(Home.RST, encodeRelay(f.sid, 0));
      return;
    }
    if (type === Home.DATA) {
      const fresh = f.data.subarray(Math.min(f.data.length, Math.max(0, s.delivered - f.seq)));
      if (f.seq > s.delivered || !fresh.length) return;
      if (s.delivered + fresh.length > s.ackSent + RELAY_WINDOW) {
        // Past the window home gave it: a VM that does not keep to it does not get
        // home to buffer for it without bound. The client's connection is reset.
        this.log(`job ${this.job}: stream ${s.sid}: the VM sent past its window; reset`);
        link.send(Home.RST, encodeRelay(s.sid, 0));
        s.socket.destroy();
        this.streams.delete(s.sid);
        this.acking.delete(s);
        return;
      }
      s.socket.write(fresh);
      s.delivered += fresh.length;
      this.stats.fromVm += fresh.length;
      this.ackLater(s);
    } else if (type === Home.FIN) {
      s.vmFin ??= f.seq;
      if (s.delivered >= s.vmFin) s.socket.end();
      this.ackLater(s);
    } else if (type === Home.ACK) {
      if (s.clientEnded && f.seq === s.next + 1) s.finAcked = true;
      s.drop(f.seq);
      if (s.next - s.acked < RELAY_WINDOW) s.socket.resume();
      this.pump(s);
    } else if (type === Home.RST) {
      s.socket.destroy();
      this.streams.delete(s.sid);
      return;
    }
    this.maybeForget(s);
  }

  private ackLater(s: ClientStream): void {
    this.acking.add(s);
    this.ackTimer ??= setImmediate(() => {
      this.ackTimer = null;
      for (const a of this.acking) {
        a.ackSent = Math.max(a.ackSent, a.ackSeq);
        this.session?.send(Home.ACK, encodeRelay(a.sid, a.ackSeq));
      }
      this.acking.clear();
    });
  }

  private maybeForget(s: ClientStream): void {
    if (s.finAcked && s.vmFin !== null && s.delivered >= s.vmFin && s.socket.destroyed)
      this.streams.delete(s.sid);
    else if (s.finAcked && s.vmFin !== null && s.delivered >= s.vmFin)
      s.socket.once('close', () => this.streams.delete(s.sid));
  }

  close(): void {
    for (const srv of this.servers) srv.close();
    for (const s of this.streams.values()) s.socket.destroy();
    this.streams.clear();
    this.log(`job ${this.job}: published ports closed`);
  }
}
