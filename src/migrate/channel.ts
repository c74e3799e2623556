/* eslint-disable max-lines -- one connection state machine (handshake, framing, back-pressure, keepalive, end and failure) over shared state; its wire format and cryptography are in channel-frame.ts */
// The encrypted, authenticated TCP channel that carries a live migration.
//
// Handshake: each side sends a 72-byte hello (magic "ROAMMIG1", an ephemeral
// X25519 public key, a random nonce); both derive two AES-256-GCM keys with
// HKDF-SHA256 over the X25519 secret, salted with the pre-shared key and bound to
// both hellos. Each side then sends an empty FINISHED frame and accepts the
// channel only once the peer's FINISHED authenticates, which proves the peer holds
// the same pre-shared key. Fresh ephemeral keys make every migration's keys new,
// so a recorded session cannot be replayed into another one.
//
// Frames: u32 BE length of (ciphertext || 16-byte tag), then ciphertext || tag.
// The GCM nonce is a per-direction frame counter and the AAD is the length field,
// so a modified, replayed, reordered or dropped frame fails authentication.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import net from 'node:net';
import {
  CHANNEL_MAGIC,
  ChannelError,
  checkPsk,
  deriveKeys,
  EMPTY,
  FINISHED,
  HELLO_SIZE,
  KEEPALIVE,
  KEEPALIVE_BODY,
  KEY_HINT,
  LENGTH_SIZE,
  MAX_FRAME_LENGTH,
  MIN_FRAME_LENGTH,
  openFrame,
  printable,
  rawPublicKey,
  RECEIVE_HIGH_WATER,
  sealFrame,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  describeSocketError,
  MAX_MESSAGE_PAYLOAD,
  type ChannelOptions,
  type Message,
  type NextWaiter,
  type Role,
  type Waiter,
} from './channel-frame.js';

export {
  CHANNEL_MAGIC,
  ChannelError,
  HELLO_SIZE,
  MAX_FRAME_LENGTH,
  MAX_MESSAGE_PAYLOAD,
  PSK_SIZE,
  type ChannelErrorCode,
  type ChannelOptions,
  type Message,
} from './channel-frame.js';
import { formatHostPort } from '../util/address.js';
import { ByteQueue } from '../util/byte-queue.js';

/**
 * One end of an established migration channel. Created by connectChannel or
 * acceptChannel, which resolve only after the handshake has authenticated.
 */
export class Channel implements AsyncIterable<Message> {
  readonly socket: net.Socket;
  readonly remote: string;
  private readonly role: Role;
  private readonly psk: Buffer;
  private privateKey: KeyObject | undefined;
  private readonly hello: Buffer;
  private sendKey: KeyObject | undefined;
  private recvKey: KeyObject | undefined;
  private sendCounter = 0;
  private recvCounter = 0;
  private sent = 0;
  private received = 0;
  private phase: 'hello' | 'finished' | 'open' = 'hello';
  // Received, undecoded bytes: a list of chunks, so that large frames cost one copy.
  /** Received bytes not yet decoded. */
  private readonly inbound = new ByteQueue();
  /** Length field of the frame being read, or -1 while waiting for a length field. */
  private frameLength = -1;
  private frameHeader: Buffer = EMPTY;
  private readonly queue: Message[] = [];
  private queuedBytes = 0;
  private pausedForConsumer = false;
  private readonly waiters: NextWaiter[] = [];
  private readonly drainWaiters: Waiter<void>[] = [];
  private readEnded = false;
  private closed = false;
  private failure: Error | undefined;
  private ending: Promise<void> | undefined;
  private endWaiter: Waiter<void> | undefined;
  private handshake: (Waiter<Channel> & { timer?: NodeJS.Timeout }) | undefined;
  private connected: boolean;
  private lastReceived = performance.now();
  private lastSent = performance.now();
  private keepTimer: NodeJS.Timeout | undefined;

  private constructor(
    socket: net.Socket,
    role: Role,
    psk: Buffer,
    remote: string,
    connected: boolean,
  ) {
    this.socket = socket;
    this.role = role;
    this.psk = psk;
    this.remote = remote;
    this.connected = connected;
    const { publicKey, privateKey } = generateKeyPairSync('x25519');
    this.privateKey = privateKey;
    this.hello = Buffer.concat([CHANNEL_MAGIC, rawPublicKey(publicKey), randomBytes(32)]);
  }

  /** Runs the handshake on `socket`; resolves with the channel once the peer's FINISHED authenticated. */
  static start(
    socket: net.Socket,
    role: Role,
    opts: ChannelOptions,
    remote: string,
    connected: boolean,
  ): Promise<Channel> {
    const ch = new Channel(socket, role, opts.psk, remote, connected);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    return new Promise<Channel>((resolve, reject) => {
      ch.handshake = { resolve, reject };
      ch.handshake.timer = setTimeout(() => {
        const what = ch.connected
          ? `migration handshake with ${remote} timed out after ${timeoutMs} ms`
          : `cannot reach ${remote}: no answer within ${timeoutMs} ms`;
        ch.fail(new ChannelError('timeout', what));
      }, timeoutMs);
      ch.attach();
      // The client speaks first; the server replies once it has seen a valid hello.
      if (role === 'client') ch.write(ch.hello);
    });
  }

  /** Wire bytes handed to the socket, handshake and framing included. */
  get bytesSent(): number {
    return this.sent;
  }

  /** Wire bytes read from the socket, handshake and framing included. */
  get bytesReceived(): number {
    return this.received;
  }

  /**
   * Sends one message (type 1..255). Resolves once the frame is handed to the
   * socket and the socket's buffer is below its high-water mark; rejects once the
   * channel has failed.
   */
  async send(type: number, payload: Uint8Array = EMPTY): Promise<void> {
    if (!Number.isInteger(type) || type < 1 || type >= KEEPALIVE) {
      throw new RangeError(
        `message type must be an integer 1..254 (0 is the handshake's FINISHED, 255 a keepalive), got ${type}`,
      );
    }
    if (payload.length > MAX_MESSAGE_PAYLOAD) {
      throw new RangeError(
        `message too large: ${payload.length} bytes > ${MAX_MESSAGE_PAYLOAD}; split it`,
      );
    }
    if (this.failure) throw this.failure;
    if (this.ending)
      throw new ChannelError(
        'protocol',
        `send after end() on the migration channel to ${this.remote}`,
      );
    if (this.closed)
      throw new ChannelError('closed', `the migration channel to ${this.remote} is closed`);
    if (this.writeParts(this.seal(type, payload))) return;
    await new Promise<void>((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  /** Next message, or null at a clean end of the stream. A timeout leaves the channel usable. */
  next(timeoutMs?: number): Promise<Message | null> {
    const m = this.queue.shift();
    if (m) {
      this.consumed(m);
      return Promise.resolve(m);
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.readEnded) return Promise.resolve(null);
    return new Promise<Message | null>((resolve, reject) => {
      const w: NextWaiter = { resolve, reject };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(
            new ChannelError('timeout', `no message from ${this.remote} within ${timeoutMs} ms`),
          );
        }, timeoutMs);
      }
      this.waiters.push(w);
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: async (): Promise<IteratorResult<Message>> => {
        const m = await this.next();
        return m ? { value: m, done: false } : { value: undefined, done: true };
      },
      // Leaving a for-await loop early does not close the channel: the caller may still send.
      return: async (): Promise<IteratorResult<Message>> => ({ value: undefined, done: true }),
    };
  }

  /** Flushes pending writes, then half-closes (the peer's reader sees a clean end). */
  end(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.ending && this.closed)
      return Promise.reject(
        new ChannelError('closed', `the migration channel to ${this.remote} is closed`),
      );
    if (!this.ending) {
      this.ending = new Promise<void>((resolve, reject) => {
        this.endWaiter = { resolve, reject };
        this.socket.end();
      });
    }
    return this.ending;
  }

  /**
   * Keepalives: send one every `everyMs` in which nothing else went out, and fail the
   * channel (code 'timeout') once nothing at all has come in for `idleMs` (a silent
   * link or a frozen peer), unless this side itself stopped reading.
   */
  keepalive(everyMs: number, idleMs: number): void {
    clearInterval(this.keepTimer);
    this.lastReceived = performance.now();
    this.keepTimer = setInterval(
      () => {
        const now = performance.now();
        if (this.failure || this.closed) return clearInterval(this.keepTimer);
        if (!this.pausedForConsumer && now - this.lastReceived > idleMs)
          return this.fail(
            new ChannelError(
              'timeout',
              `nothing from ${this.remote} for ${Math.round(now - this.lastReceived)} ms (silent link or peer)`,
            ),
          );
        if (now - this.lastSent >= everyMs && !this.ending)
          this.writeParts(this.seal(KEEPALIVE, KEEPALIVE_BODY));
      },
      Math.max(10, Math.min(everyMs, idleMs / 4)),
    );
    this.keepTimer.unref();
  }

  /** Aborts at once: queued messages are dropped, pending calls reject with `err` (or a 'closed' error). */
  destroy(err?: Error): void {
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.fail(
      err ?? new ChannelError('closed', `the migration channel to ${this.remote} was destroyed`),
    );
  }

  private attach(): void {
    const s = this.socket;
    s.setNoDelay(true);
    // Half-close must not close our sending side: the peer may end() while we still send.
    s.allowHalfOpen = true;
    s.on('connect', () => (this.connected = true));
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('end', () => this.onEnd());
    s.on('drain', () => this.settleAll(this.drainWaiters, (w) => w.resolve()));
    s.on('finish', () => {
      this.endWaiter?.resolve();
      this.endWaiter = undefined;
    });
    s.on('error', (err) => {
      const message = this.connected
        ? `connection to ${this.remote} lost: ${describeSocketError(err)}`
        : `cannot reach ${this.remote}: ${describeSocketError(err)}`;
      this.fail(new ChannelError('closed', message, { cause: err }));
    });
    s.on('close', () => {
      this.closed = true;
      if (!this.readEnded)
        this.fail(new ChannelError('closed', `connection to ${this.remote} closed`));
      // A socket that closed after a clean end can no longer send or drain.
      const gone = new ChannelError('closed', `connection to ${this.remote} closed`);
      this.settleAll(this.drainWaiters, (w) => w.reject(gone));
      this.endWaiter?.reject(gone);
      this.endWaiter = undefined;
    });
  }

  private write(b: Buffer): boolean {
    this.sent += b.length;
    this.lastSent = performance.now();
    return this.socket.write(b);
  }

  /** One frame's pieces in one writev: joining a 4 MiB frame first would copy it. */
  private writeParts(parts: Buffer[]): boolean {
    if (parts.length === 1) return this.write(parts[0]);
    this.socket.cork();
    let ok = true;
    for (const p of parts) if (p.length > 0) ok = this.write(p);
    this.socket.uncork();
    return ok;
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return;
    this.received += chunk.length;
    this.lastReceived = performance.now();
    this.inbound.push(chunk);
    try {
      this.pump();
    } catch (err) {
      const e =
        err instanceof ChannelError
          ? err
          : new ChannelError(
              'protocol',
              `migration channel to ${this.remote}: ${(err as Error).message}`,
              { cause: err },
            );
      // A key mismatch is reported to the peer as well: flush our FINISHED and close gracefully.
      this.fail(e, e.code === 'handshake');
    }
  }

  /** Decodes every complete hello/frame in the buffer. */
  private pump(): void {
    while (!this.failure) {
      if (this.phase === 'hello') {
        // Refuse a foreign peer as soon as its bytes disagree with the magic.
        const n = Math.min(this.inbound.length, CHANNEL_MAGIC.length);
        const head = this.inbound.peek(n);
        if (!head.equals(CHANNEL_MAGIC.subarray(0, n))) {
          throw new ChannelError(
            'handshake',
            `migration handshake with ${this.remote} failed: not a roam migration peer (it sent "${printable(this.inbound.peek(Math.min(this.inbound.length, 16)))}" instead of the ROAMMIG1 hello)`,
          );
        }
        if (this.inbound.length < HELLO_SIZE) return;
        this.onHello(this.inbound.take(HELLO_SIZE));
        this.phase = 'finished';
        continue;
      }
      if (this.frameLength < 0) {
        if (this.inbound.length < LENGTH_SIZE) return;
        const header = this.inbound.take(LENGTH_SIZE);
        const length = header.readUInt32BE(0);
        if (length > MAX_FRAME_LENGTH) {
          throw new ChannelError(
            'protocol',
            `migration stream from ${this.remote}: frame too large: frame ${this.recvCounter} claims ${length} bytes, the limit is ${MAX_FRAME_LENGTH} (corrupted or tampered?)`,
          );
        }
        if (length < MIN_FRAME_LENGTH) {
          throw new ChannelError(
            'protocol',
            `migration stream from ${this.remote}: frame too short: frame ${this.recvCounter} claims ${length} bytes, at least ${MIN_FRAME_LENGTH} needed (corrupted or tampered?)`,
          );
        }
        this.frameLength = length;
        this.frameHeader = header;
      }
      if (this.inbound.length < this.frameLength) return;
      const body = this.inbound.take(this.frameLength);
      this.frameLength = -1;
      this.onFrame(this.open(this.frameHeader, body));
    }
  }

  private onHello(peer: Buffer): void {
    const keys = deriveKeys(
      this.role === 'client',
      this.psk,
      this.privateKey!,
      this.hello,
      peer,
      this.remote,
    );
    // The ephemeral private key is not needed again; dropping it keeps past sessions secret.
    this.privateKey = undefined;
    this.sendKey = keys.send;
    this.recvKey = keys.recv;
    const finished = Buffer.concat(this.seal(FINISHED, EMPTY));
    // The server's reply and its FINISHED go out in one write.
    this.write(this.role === 'client' ? finished : Buffer.concat([this.hello, finished]));
  }

  private onFrame(m: Message): void {
    if (this.phase === 'finished') {
      if (m.type !== FINISHED || m.payload.length !== 0) {
        throw new ChannelError(
          'protocol',
          `migration handshake with ${this.remote} failed: expected FINISHED, got message type ${m.type} (${m.payload.length} bytes)`,
        );
      }
      this.phase = 'open';
      const h = this.handshake!;
      this.handshake = undefined;
      clearTimeout(h.timer);
      h.resolve(this);
      return;
    }
    if (m.type === FINISHED) {
      throw new ChannelError(
        'protocol',
        `migration stream from ${this.remote}: unexpected FINISHED at frame ${this.recvCounter - 1}`,
      );
    }
    if (m.type === KEEPALIVE) return;
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(m);
      return;
    }
    this.queue.push(m);
    this.queuedBytes += m.payload.length;
    if (this.queuedBytes >= RECEIVE_HIGH_WATER && !this.pausedForConsumer) {
      this.pausedForConsumer = true;
      this.socket.pause();
    }
  }

  private consumed(m: Message): void {
    this.queuedBytes -= m.payload.length;
    if (this.pausedForConsumer && this.queuedBytes < RECEIVE_HIGH_WATER / 2) {
      this.pausedForConsumer = false;
      this.socket.resume();
    }
  }

  /** A frame as pieces to write in order: large payloads are not copied once more to join them. */
  private seal(type: number, payload: Uint8Array): Buffer[] {
    return sealFrame(this.sendKey!, this.sendCounter++, type, payload);
  }

  private open(header: Buffer, body: Buffer): Message {
    const frame = this.recvCounter++;
    const m = openFrame(this.recvKey!, frame, header, body);
    if (m) return m;
    if (this.phase === 'finished') {
      throw new ChannelError(
        'handshake',
        `migration handshake with ${this.remote} failed: the peer does not hold the same key ${KEY_HINT}`,
      );
    }
    throw new ChannelError(
      'tampered',
      `migration stream from ${this.remote} failed authentication (tampered, replayed or corrupted) at frame ${frame}`,
    );
  }

  private onEnd(): void {
    if (this.failure) return;
    if (this.phase !== 'open') {
      this.fail(
        new ChannelError(
          'closed',
          `migration handshake with ${this.remote} failed: the peer closed the connection during the handshake (after ${this.received} bytes)`,
        ),
      );
      return;
    }
    if (this.frameLength >= 0 || this.inbound.length > 0) {
      const have = this.frameLength >= 0 ? LENGTH_SIZE + this.inbound.length : this.inbound.length;
      const want =
        this.frameLength >= 0 ? `${LENGTH_SIZE + this.frameLength}` : `at least ${LENGTH_SIZE}`;
      this.fail(
        new ChannelError(
          'closed',
          `migration stream from ${this.remote}: peer closed the connection in the middle of a frame (frame ${this.recvCounter}: ${have} of ${want} bytes)`,
        ),
      );
      return;
    }
    this.readEnded = true;
    this.settleAll(this.waiters, (w) => {
      clearTimeout(w.timer);
      w.resolve(null);
    });
  }

  /** Fails the channel once: everything pending rejects with `err`; queued messages stay readable before it. */
  private fail(err: Error, graceful = false): void {
    if (this.failure) return;
    this.failure = err;
    clearInterval(this.keepTimer);
    this.inbound.clear();
    if (graceful && !this.socket.destroyed) {
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), 1000);
      t.unref();
      this.socket.once('close', () => clearTimeout(t));
    } else {
      this.socket.destroy();
    }
    if (this.handshake) {
      clearTimeout(this.handshake.timer);
      this.handshake.reject(err);
      this.handshake = undefined;
    }
    this.settleAll(this.waiters, (w) => {
      clearTimeout(w.timer);
      w.reject(err);
    });
    this.settleAll(this.drainWaiters, (w) => w.reject(err));
    this.endWaiter?.reject(err);
    this.endWaiter = undefined;
  }

  private settleAll<W>(list: W[], settle: (w: W) => void): void {
    for (const w of list.splice(0)) settle(w);
  }
}

/** Connects to a migration peer and runs the handshake as the client. */
export async function connectChannel(
  host: string,
  port: number,
  opts: ChannelOptions,
): Promise<Channel> {
  checkPsk(opts.psk);
  const socket = net.connect({ host, port, allowHalfOpen: true });
  return Channel.start(socket, 'client', opts, formatHostPort(host, port), false);
}

/**
 * Runs the handshake as the server on an accepted socket. The channel owns the
 * socket from here on (it sets allowHalfOpen, so the peer's end() does not end ours).
 */
export async function acceptChannel(socket: net.Socket, opts: ChannelOptions): Promise<Channel> {
  try {
    checkPsk(opts.psk);
  } catch (err) {
    socket.destroy();
    throw err;
  }
  const remote =
    socket.remoteAddress !== undefined && socket.remotePort !== undefined
      ? formatHostPort(socket.remoteAddress, socket.remotePort)
      : 'unknown peer';
  return Channel.start(socket, 'server', opts, remote, true);
}
