// A Pulse rendezvous server (thesis 8.3.1, Figure 8.6): it holds subscriptions,
// each an H(s) and the address that asked, for a lease; when someone releases an s
// it hashes it and forwards s to H(s)'s subscribers. It keeps released secrets for
// a while, so that a subscriber whose event datagram was lost, or who subscribed
// just after the release, learns s on its next renewal. It stores nothing else,
// and nothing it holds says anything about what the event invalidates.
//
// It faces strangers, so everything it holds is bounded: subscriptions in all, per
// source address, and released secrets; a datagram it cannot decode is dropped.
// A forwarded event is the size of the datagram that subscribed, so the server
// does not amplify a spoofed subscription.
import dgram from 'node:dgram';
import { decodeDatagram, encodeReply, encodeRequest, H, type Request } from './wire.js';

export interface RendezvousOptions {
  host?: string;
  port?: number;
  /** Lease granted to a subscription, seconds (subscribers renew before it ends). */
  leaseS?: number;
  /** How long a released secret is kept for late subscribers and renewals, seconds. */
  retainS?: number;
  maxSubscriptions?: number;
  maxPerAddress?: number;
  maxReleased?: number;
}

export interface RendezvousStats {
  subscriptions: number;
  released: number;
  received: number;
  dropped: number;
  forwarded: number;
  refused: number;
}

type Subs = Map<string, { port: number; address: string; expires: number }>;

export class Rendezvous {
  readonly socket: dgram.Socket;
  private readonly subs = new Map<string, Subs>();
  private readonly perAddress = new Map<string, number>();
  private readonly released = new Map<string, { s: Buffer; until: number }>();
  private count = 0;
  private readonly o: Required<Omit<RendezvousOptions, 'host' | 'port'>>;
  private sweeper: NodeJS.Timeout | undefined;
  readonly stats: RendezvousStats = {
    subscriptions: 0,
    released: 0,
    received: 0,
    dropped: 0,
    forwarded: 0,
    refused: 0,
  };

  constructor(o: RendezvousOptions = {}) {
    this.o = {
      leaseS: o.leaseS ?? 300,
      retainS: o.retainS ?? 600,
      maxSubscriptions: o.maxSubscriptions ?? 2_000_000,
      maxPerAddress: o.maxPerAddress ?? 4096,
      maxReleased: o.maxReleased ?? 100_000,
    };
    this.socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    this.socket.on('message', (buf, rinfo) => this.onDatagram(buf, rinfo));
    this.socket.on('error', () => undefined); // ICMP unreachable from a gone subscriber
  }

  listen(host = '127.0.0.1', port = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(port, host, () => {
        this.socket.off('error', reject);
        this.sweeper = setInterval(() => this.sweep(), 1000);
        this.sweeper.unref();
        const a = this.socket.address();
        resolve(`${a.address}:${a.port}`);
      });
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    this.socket.close();
  }

  /** Handle one datagram; exported through the class for the fuzz test. */
  onDatagram(buf: Buffer, from: { address: string; port: number }): void {
    this.stats.received++;
    const d = decodeDatagram(buf);
    if (!d || d.reply || d.kind === 'event') {
      this.stats.dropped++;
      return;
    }
    if (d.kind === 'subscribe') this.subscribe(d, from);
    else this.release(d, from);
  }

  private subscribe(d: Request, from: { address: string; port: number }): void {
    const h = d.value.toString('hex');
    const done = this.released.get(h);
    if (done) return this.reply(from, encodeReply({ ...d, kind: 'subscribe', secret: done.s }));
    const key = `${from.address}:${from.port}`;
    let set = this.subs.get(h);
    const fresh = !set?.has(key);
    if (fresh) {
      const n = this.perAddress.get(from.address) ?? 0;
      if (this.count >= this.o.maxSubscriptions || n >= this.o.maxPerAddress) {
        this.stats.refused++;
        return; // no reply: the subscriber falls back on its slow poll
      }
      this.perAddress.set(from.address, n + 1);
      this.count++;
    }
    if (!set) {
      set = new Map() as Subs;
      this.subs.set(h, set);
    }
    set.set(key, { ...from, expires: Date.now() + this.o.leaseS * 1000 });
    this.stats.subscriptions = this.count;
    this.reply(from, encodeReply({ ...d, kind: 'subscribe', lease: this.o.leaseS }));
  }

  private release(d: Request, from: { address: string; port: number }): void {
    const s = d.value;
    const h = H(s).toString('hex');
    let forwarded = 0;
    if (!this.released.has(h)) {
      const set = this.subs.get(h);
      const now = Date.now();
      for (const sub of set?.values() ?? []) {
        if (sub.expires < now) continue;
        this.socket.send(
          encodeRequest({ kind: 'event', id: d.id, value: s }),
          sub.port,
          sub.address,
        );
        forwarded++;
      }
      if (set) this.drop(h, set);
      this.released.set(h, { s, until: Date.now() + this.o.retainS * 1000 });
      while (this.released.size > this.o.maxReleased)
        this.released.delete(this.released.keys().next().value!);
      this.stats.released++;
      this.stats.forwarded += forwarded;
    }
    this.reply(from, encodeReply({ kind: 'release', id: d.id, value: s, forwarded }));
  }

  private drop(h: string, set: Subs): void {
    for (const sub of set.values()) this.forget(sub.address);
    this.subs.delete(h);
    this.stats.subscriptions = this.count;
  }

  private forget(address: string): void {
    this.count--;
    const n = (this.perAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, n);
  }

  private reply(to: { address: string; port: number }, buf: Buffer): void {
    this.socket.send(buf, to.port, to.address);
  }

  /** Expired leases and released secrets go. */
  sweep(now = Date.now()): void {
    for (const [h, set] of this.subs) {
      for (const [k, sub] of set)
        if (sub.expires < now) {
          set.delete(k);
          this.forget(sub.address);
        }
      if (set.size === 0) this.subs.delete(h);
    }
    for (const [h, r] of this.released) if (r.until < now) this.released.delete(h);
    this.stats.subscriptions = this.count;
  }
}
