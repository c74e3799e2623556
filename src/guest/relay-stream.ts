// One client connection relayed by home, as the guest kernel keeps it (see
// relay.ts for the rule that makes its bytes exactly-once).
import { Errno, WasiError } from './errno.js';
import { MAX_RELAY_CHUNK, RELAY_WINDOW } from './home-wire.js';
import { ByteQueue } from '../util/byte-queue.js';

/** What a stream asks of the relay that owns it. */
export interface StreamOwner {
  flush(s: RelayStream): void;
  ackLater(s: RelayStream): void;
  maybeForget(s: RelayStream): void;
}

export interface StreamState {
  sid: number;
  port: number;
  peer: string;
  recv: string;
  recvNext: number;
  finIn: number | null;
  send: string;
  sendAcked: number;
  finOut: number | null;
  finAcked: boolean;
  reset: boolean;
  closed: boolean;
}

export class RelayStream {
  readonly kind = 'relay';
  private recvQ: Buffer[] = [];
  private recvBytes = 0;
  recvNext = 0;
  finIn: number | null = null;
  private readonly sendQ = new ByteQueue();
  sendAcked = 0;
  sendNext = 0;
  /** How far this VM has sent on the current session (not saved: a resume starts at home's offset). */
  sentUpTo = 0;
  finOut: number | null = null;
  finSent = false;
  /** Home acknowledged the end of what this VM sent (ACK at finOut + 1). */
  finAcked = false;
  reset = false;
  closed = false;

  constructor(
    readonly sid: number,
    readonly port: number,
    readonly peer: string,
    private readonly relay: StreamOwner,
  ) {}

  get eof(): boolean {
    return this.finIn !== null && this.recvNext >= this.finIn;
  }

  readable(): boolean {
    return this.recvBytes > 0 || this.eof || this.reset;
  }

  read(dst: Uint8Array, peek = false): number | null {
    if (this.recvBytes === 0) {
      if (this.reset) throw new WasiError(Errno.CONNRESET);
      return this.eof ? 0 : null;
    }
    let n = 0;
    for (let i = 0; n < dst.length && i < this.recvQ.length;) {
      const chunk = this.recvQ[i];
      const take = Math.min(chunk.length, dst.length - n);
      dst.set(chunk.subarray(0, take), n);
      n += take;
      if (peek) i++;
      else if (take === chunk.length) this.recvQ.shift();
      else this.recvQ[0] = chunk.subarray(take);
    }
    if (!peek) {
      this.recvBytes -= n;
      this.relay.ackLater(this);
    }
    return n;
  }

  /** Offset up to which the program has read: what this VM acknowledges. */
  get consumed(): number {
    return this.recvNext - this.recvBytes;
  }

  write(src: Uint8Array): number {
    if (this.reset) throw new WasiError(Errno.CONNRESET);
    if (this.finOut !== null) throw new WasiError(Errno.PIPE);
    this.sendQ.push(Buffer.from(src));
    this.sendNext += src.length;
    this.relay.flush(this);
    return src.length;
  }

  shutdown(how: number): void {
    if (how & 2 && this.finOut === null) {
      this.finOut = this.sendNext;
      this.relay.flush(this);
    }
  }

  close(): void {
    this.closed = true;
    this.shutdown(2);
    // Bytes still arriving are read by nobody: take them, so home is not held up.
    this.recvQ = [];
    this.recvBytes = 0;
    this.relay.ackLater(this);
    this.relay.maybeForget(this);
  }

  /** Bytes from home at offset `seq` (a resend may overlap what is here already). */
  onData(seq: number, data: Buffer): void {
    if (this.closed || this.reset) return this.relay.ackLater(this);
    if (seq > this.recvNext) return; // a gap cannot happen on an ordered session; ignore it
    // Beyond the window nothing is taken (a home that keeps to it never sends that far).
    const room = this.consumed + RELAY_WINDOW - this.recvNext;
    const fresh = data
      .subarray(Math.min(data.length, this.recvNext - seq))
      .subarray(0, Math.max(0, room));
    if (!fresh.length) return;
    this.recvQ.push(Buffer.from(fresh));
    this.recvBytes += fresh.length;
    this.recvNext += fresh.length;
  }

  onAck(seq: number): void {
    if (this.finOut !== null && seq === this.finOut + 1) {
      this.finAcked = this.finSent = true;
      this.relay.maybeForget(this);
    }
    const drop = Math.min(seq, this.sendNext) - this.sendAcked;
    if (drop <= 0) return;
    this.sendAcked += drop;
    this.sendQ.skip(drop);
  }

  /** What this VM acknowledges: what the program read, and the end once it has read up to it. */
  get ackSeq(): number {
    return this.consumed + (this.eof && this.recvBytes === 0 ? 1 : 0);
  }

  /** The unacknowledged bytes from offset `from` on, in chunks for the wire. */
  *pending(from: number): Generator<[number, Buffer]> {
    let at = this.sendAcked;
    for (const c of this.sendQ.each()) {
      const end = at + c.length;
      if (end > from) {
        const part = c.subarray(Math.max(0, from - at));
        for (let o = 0; o < part.length; o += MAX_RELAY_CHUNK)
          yield [end - part.length + o, part.subarray(o, o + MAX_RELAY_CHUNK)];
      }
      at = end;
    }
  }

  save(): StreamState {
    return {
      sid: this.sid,
      port: this.port,
      peer: this.peer,
      recv: Buffer.concat(this.recvQ).toString('base64'),
      recvNext: this.recvNext,
      finIn: this.finIn,
      send: Buffer.concat([...this.sendQ.each()]).toString('base64'),
      sendAcked: this.sendAcked,
      finOut: this.finOut,
      finAcked: this.finAcked,
      reset: this.reset,
      closed: this.closed,
    };
  }

  static restore(s: StreamState, relay: StreamOwner): RelayStream {
    const r = new RelayStream(s.sid, s.port, s.peer, relay);
    const recv = Buffer.from(s.recv, 'base64');
    const send = Buffer.from(s.send, 'base64');
    if (recv.length) r.recvQ.push(recv);
    r.recvBytes = recv.length;
    r.recvNext = s.recvNext;
    r.finIn = s.finIn;
    if (send.length) r.sendQ.push(send);
    r.sendAcked = s.sendAcked;
    r.sendNext = s.sendAcked + send.length;
    r.sentUpTo = r.sendAcked;
    r.finOut = s.finOut;
    r.finAcked = r.finSent = s.finAcked;
    r.reset = s.reset;
    r.closed = s.closed;
    return r;
  }
}
