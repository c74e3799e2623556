// Client connections relayed by the VM's home (thesis 7.2: connections that
// survive migration). Home is the TCP endpoint clients talk to; each connection
// reaches the VM as a stream over the VM's session with home. What the streams
// need to resume is kept here, in the guest kernel, so it is in every
// checkpoint: per direction a byte offset, the bytes received and not yet read
// by the program, and the bytes sent and not yet acknowledged by home.
//
// Exactly-once rule: nothing leaves a fenced VM, acknowledgements included. So
// every byte this VM acknowledged was in its state before the freeze, and every
// byte home acknowledged to it is no longer needed by any copy of it. After a
// resume both ends say how far they got and resend from there; duplicates are
// cut off by offset.
import { RelayStream, type StreamState } from './relay-stream.js';
import {
  encodeRelay,
  Home,
  type Hello,
  type Open,
  type RelayFrame,
  type Welcome,
} from './home-wire.js';

import { RELAY_WINDOW } from './home-wire.js';
export { RELAY_WINDOW };

/** Where the session goes, set by whoever builds the VM for a home (`roam submit`). */
export interface RelayConfig {
  /** HOST:PORT of home's session server. */
  home: string;
  job: string;
  /** The session key (hex, 32 bytes): it authenticates the VM to home and home to the VM. */
  key: string;
}

export interface RelayLink {
  send(type: number, payload: Buffer): void;
}

export interface RelayState {
  config: RelayConfig;
  token: string;
  maxSid: number;
  streams: StreamState[];
  orphan?: boolean;
}

/** The VM's side of its home session: its streams and what the session needs to resume. */
export { RelayStream, type StreamState };

export class Relay {
  readonly streams = new Map<number, RelayStream>();
  maxSid = 0;
  token = '';
  private link: RelayLink | null = null;
  private fenced = false;
  /** A fork's child: it has no session of its own. */
  orphan = false;
  private acking = new Set<RelayStream>();
  private ackTimer: NodeJS.Immediate | null = null;

  constructor(
    readonly config: RelayConfig,
    /** A client connected to published port `port`: queue the stream on that listener (false: none). */
    private readonly accept: (port: number, s: RelayStream) => boolean,
    private readonly wake: () => void,
  ) {}

  get attached(): boolean {
    return this.link !== null;
  }

  hello(vm: string): Hello {
    return {
      job: this.config.job,
      vm,
      token: this.token,
      maxSid: this.maxSid,
      streams: [...this.streams.values()].map((s) => ({
        sid: s.sid,
        recvNext: s.recvNext,
        sendAcked: s.sendAcked,
      })),
    };
  }

  /** The session is (re)established: resume every stream from where home got to. */
  /**
   * HELLO is on its way on `link`: send what the programs wrote and home has not
   * acknowledged now, without waiting a round trip for WELCOME (home cuts off by
   * offset whatever it has already; a stream it no longer has, it resets).
   */
  attachEarly(link: RelayLink): void {
    this.link = link;
    for (const s of this.streams.values()) {
      s.sentUpTo = s.sendAcked;
      s.finSent = s.finAcked;
    }
    if (!this.fenced) for (const s of this.streams.values()) this.flush(s);
  }

  attach(link: RelayLink, w: Welcome): void {
    this.token = w.token;
    // After attachEarly on this link the bytes went out already; else resend from home's offset.
    const early = this.link === link;
    this.link = link;
    const home = new Map(w.streams.map((s) => [s.sid, s.recvNext]));
    for (const s of this.streams.values()) {
      const got = home.get(s.sid);
      if (got === undefined) {
        // Home no longer has it (it restarted, or the client went away long ago).
        s.reset = true;
        this.maybeForget(s);
        continue;
      }
      s.onAck(got);
      s.sentUpTo = early ? Math.max(s.sentUpTo, s.sendAcked) : s.sendAcked;
      s.finSent = early ? s.finSent || s.finAcked : s.finAcked;
    }
    this.wake();
    if (!this.fenced) for (const s of this.streams.values()) this.resume(s);
  }

  detach(): void {
    this.link = null;
  }

  /** This copy is a fork's child: its streams are the parent's, so here they are reset, and it never calls home. */
  disown(): void {
    this.orphan = true;
    for (const s of this.streams.values()) s.reset = true;
    this.streams.clear();
  }

  fence(): void {
    this.fenced = true;
  }
  unfence(): void {
    this.fenced = false;
    for (const s of this.streams.values()) this.resume(s);
  }

  private resume(s: RelayStream): void {
    this.flush(s);
    this.ackLater(s);
  }

  /**
   * Send what the program wrote and home does not have yet, within the window home
   * gave (never while fenced). More goes as home acknowledges: home passes bytes on
   * as fast as the client takes them, and buffers no more than a window.
   */
  flush(s: RelayStream): void {
    const link = this.link;
    if (!link || this.fenced || s.reset) return;
    const limit = Math.min(s.sendNext, s.sendAcked + RELAY_WINDOW);
    for (const [seq, chunk] of s.pending(s.sentUpTo)) {
      if (seq >= limit) break;
      link.send(Home.DATA, encodeRelay(s.sid, seq, chunk.subarray(0, limit - seq)));
    }
    s.sentUpTo = Math.max(s.sentUpTo, limit);
    if (s.finOut !== null && !s.finSent && s.sentUpTo >= s.finOut) {
      link.send(Home.FIN, encodeRelay(s.sid, s.finOut));
      s.finSent = true;
    }
  }

  /** Acknowledge what the program read, once per turn (never while fenced). */
  ackLater(s: RelayStream): void {
    this.acking.add(s);
    this.ackTimer ??= setImmediate(() => {
      this.ackTimer = null;
      const link = this.link;
      if (!link || this.fenced) return;
      for (const a of this.acking) link.send(Home.ACK, encodeRelay(a.sid, a.ackSeq));
      this.acking.clear();
    });
  }

  onOpen(o: Open): void {
    if (o.sid <= this.maxSid) return; // a resend of one this VM knows (or knew)
    this.maxSid = o.sid;
    const s = new RelayStream(o.sid, o.port, o.peer, this);
    this.streams.set(o.sid, s);
    if (!this.accept(o.port, s)) {
      s.reset = true;
      this.link?.send(Home.RST, encodeRelay(o.sid, 0));
      this.streams.delete(o.sid);
    }
  }

  onFrame(type: number, f: RelayFrame): void {
    const s = this.streams.get(f.sid);
    if (!s) {
      if (type !== Home.RST && f.sid <= this.maxSid)
        this.link?.send(Home.RST, encodeRelay(f.sid, 0));
      return;
    }
    if (type === Home.DATA) {
      s.onData(f.seq, f.data);
      if (s.closed) this.ackLater(s); // nobody reads it: take it at once
    } else if (type === Home.ACK) {
      s.onAck(f.seq);
      this.flush(s); // the window moved
    } else if (type === Home.FIN) {
      s.finIn ??= f.seq;
      this.ackLater(s);
    } else if (type === Home.RST) {
      s.reset = true;
      this.maybeForget(s);
    }
    this.wake();
  }

  /** A stream closed by the program whose end home has acknowledged (or that was reset) is done. */
  maybeForget(s: RelayStream): void {
    if (!s.closed) return;
    if (s.reset || (s.finAcked && s.eof)) this.streams.delete(s.sid);
  }

  save(): RelayState {
    return {
      config: this.config,
      token: this.token,
      maxSid: this.maxSid,
      streams: [...this.streams.values()].map((s) => s.save()),
      ...(this.orphan ? { orphan: true } : {}),
    };
  }

  static restore(
    st: RelayState,
    accept: (port: number, s: RelayStream) => boolean,
    wake: () => void,
  ): Relay {
    const r = new Relay(st.config, accept, wake);
    r.token = st.token;
    r.maxSid = st.maxSid;
    r.orphan = st.orphan === true;
    for (const s of st.streams) r.streams.set(s.sid, RelayStream.restore(s, r));
    return r;
  }
}
