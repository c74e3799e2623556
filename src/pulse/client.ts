// Both ends that talk to rendezvous servers: a subscriber (the replica: a node's
// agent) and the publisher's release (the master: the control service).
//
// A subscriber holds one UDP socket, so that a NAT keeps one mapping open for it,
// and renews every subscription every `renewMs` (the thesis' 30 s to 5 min, as the
// NAT in the way needs): the renewal is what keeps the mapping, and the lease,
// alive. An event is believed only if its s hashes to an H(s) being watched; the
// same event arriving from several rendezvous servers is reported once.
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { parseHostPort } from '../util/address.js';
import { decodeDatagram, encodeRequest, H, HASH_SIZE } from './wire.js';

/** A fresh event: s kept by the publisher, H(s) given to subscribers. */
export function newEvent(): { s: Buffer; h: Buffer } {
  const s = randomBytes(HASH_SIZE);
  return { s, h: H(s) };
}

export const parseServers = (list: string | string[]): string[] =>
  (Array.isArray(list) ? list : list.split(','))
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      parseHostPort(x); // refuses a malformed address now, not at the first send
      return x;
    });

export interface SubscriberOptions {
  /** Renew every subscription this often (default 30 s). */
  renewMs?: number;
  /** Datagrams dropped on the way in, 0..1 (tests of the slow poll). */
  lossRate?: number;
}

export interface SubscriberStats {
  sent: number;
  received: number;
  events: number;
  ignored: number;
}

/** Emits 'event' (h: Buffer, s: Buffer) once per watched H(s) whose s arrived. */
export class Subscriber extends EventEmitter {
  private readonly socket = dgram.createSocket('udp4');
  private readonly watched = new Map<string, string[]>();
  private readonly timer: NodeJS.Timeout;
  private readonly ready: Promise<void>;
  readonly stats: SubscriberStats = { sent: 0, received: 0, events: 0, ignored: 0 };

  constructor(private readonly o: SubscriberOptions = {}) {
    super();
    this.socket.on('message', (buf) => this.onDatagram(buf));
    this.socket.on('error', () => undefined); // an unreachable server: the renewal tries again
    this.ready = new Promise((r) => this.socket.bind(0, () => r()));
    this.timer = setInterval(() => this.renewAll(), o.renewMs ?? 30_000);
    this.timer.unref();
  }

  /** Watch for the release of the s behind `h` at every one of `servers`. */
  watch(h: Buffer, servers: string[]): void {
    const key = h.toString('hex');
    this.watched.set(key, servers);
    void this.send(key, servers);
  }

  unwatch(h: Buffer): void {
    this.watched.delete(h.toString('hex'));
  }

  get watching(): number {
    return this.watched.size;
  }

  close(): void {
    clearInterval(this.timer);
    this.socket.close();
  }

  private renewAll(): void {
    for (const [key, servers] of this.watched) void this.send(key, servers);
  }

  private async send(key: string, servers: string[]): Promise<void> {
    await this.ready;
    const buf = encodeRequest({
      kind: 'subscribe',
      id: randomInt(0, 65536),
      value: Buffer.from(key, 'hex'),
    });
    for (const srv of servers) {
      const { host, port } = parseHostPort(srv);
      this.stats.sent++;
      this.socket.send(buf, port, host);
    }
  }

  private onDatagram(buf: Buffer): void {
    if (this.o.lossRate && Math.random() < this.o.lossRate) return;
    this.stats.received++;
    const d = decodeDatagram(buf);
    const s = d?.reply ? d.secret : d?.kind === 'event' ? d.value : undefined;
    if (!s) return;
    const h = H(s);
    const key = h.toString('hex');
    // A forged event (s does not hash to anything watched) or a duplicate.
    if (!this.watched.has(key)) {
      this.stats.ignored++;
      return;
    }
    this.watched.delete(key);
    this.stats.events++;
    this.emit('event', h, s);
  }
}

/**
 * Release s at every server; resolves with each server's count of subscribers it
 * forwarded to (null: no answer after `tries`, e.g. the datagrams were lost).
 */
export async function release(
  s: Buffer,
  servers: string[],
  o: { tries?: number; timeoutMs?: number } = {},
): Promise<Record<string, number | null>> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => undefined);
  const out: Record<string, number | null> = Object.fromEntries(servers.map((x) => [x, null]));
  const id = randomInt(0, 65536);
  const buf = encodeRequest({ kind: 'release', id, value: s });
  const byAddr = new Map<string, string>();
  let pending = servers.length;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  socket.on('message', (m, rinfo) => {
    const d = decodeDatagram(m);
    const srv = byAddr.get(`${rinfo.address}:${rinfo.port}`);
    if (!d?.reply || d.kind !== 'release' || !d.value.equals(s) || !srv || out[srv] !== null)
      return;
    out[srv] = d.forwarded ?? 0;
    if (--pending === 0) done();
  });
  await new Promise<void>((r) => socket.bind(0, () => r()));
  const targets = (
    await Promise.all(
      servers.map(async (srv) => {
        const { host, port } = parseHostPort(srv);
        // A server whose name does not resolve stays null, as one that does not answer.
        const address = await lookup(host, 4).then(
          (a) => a.address,
          () => null,
        );
        if (address === null) pending--;
        else byAddr.set(`${address}:${port}`, srv);
        return { srv, port, address };
      }),
    )
  ).filter((x): x is { srv: string; port: number; address: string } => x.address !== null);
  const tries = o.tries ?? 5;
  try {
    for (let t = 0; t < tries && pending > 0; t++) {
      for (const x of targets) if (out[x.srv] === null) socket.send(buf, x.port, x.address);
      await Promise.race([finished, new Promise((r) => setTimeout(r, o.timeoutMs ?? 200))]);
    }
  } finally {
    socket.close();
  }
  return out;
}
