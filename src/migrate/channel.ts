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
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import net from 'node:net';
import { RoamError } from '../util/errors.js';
import { formatHostPort } from '../util/address.js';
import { ByteQueue } from '../util/byte-queue.js';

export const CHANNEL_MAGIC = Buffer.from('ROAMMIG1', 'latin1');
export const HELLO_SIZE = 72;
export const PSK_SIZE = 32;
/** Largest payload of one message. */
export const MAX_MESSAGE_PAYLOAD = 16 * 1024 * 1024;
const TAG_SIZE = 16;
const LENGTH_SIZE = 4;
/** Largest value of a frame's length field: type byte + payload + tag. */
export const MAX_FRAME_LENGTH = MAX_MESSAGE_PAYLOAD + 1 + TAG_SIZE;
const MIN_FRAME_LENGTH = 1 + TAG_SIZE;
/** Message type 0 is the handshake's FINISHED; callers use 1..255. */
const FINISHED = 0;
const HKDF_INFO = Buffer.from('roam migration v1', 'latin1');
/** DER SubjectPublicKeyInfo header of an X25519 key; the raw 32-byte key follows it. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Stop reading from the socket while this many decrypted bytes wait for the consumer (receive back-pressure). */
const RECEIVE_HIGH_WATER = 32 * 1024 * 1024;
const KEY_HINT = '(check --key / $ROAM_HOME/checkpoint.key)';
const EMPTY = Buffer.alloc(0);

export type ChannelErrorCode = 'handshake' | 'tampered' | 'closed' | 'protocol' | 'timeout';

export class ChannelError extends RoamError {
  declare readonly code: ChannelErrorCode;
  constructor(code: ChannelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, { kind: code === 'timeout' ? 'timeout' : 'peer', cause: options?.cause });
  }
}

export interface Message {
  type: number;
  payload: Buffer;
}

export interface ChannelOptions {
  /** The 32-byte pre-shared key both ends hold. */
  psk: Buffer;
  /** Limit for connecting and the handshake together (default 10 s). */
  timeoutMs?: number;
}

type Role = 'client' | 'server';

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

interface NextWaiter extends Waiter<Message | null> {
  timer?: NodeJS.Timeout;
}

/** Readable names for the socket errors a user is likely to meet. */
const SOCKET_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'connection closed by peer',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary DNS failure)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  EADDRNOTAVAIL: 'address not available',
};

function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (code && SOCKET_REASONS[code]) ?? err.message;
}

/** "host:port", with brackets around an IPv6 address. */

function checkPsk(psk: Buffer): void {
  if (!Buffer.isBuffer(psk) || psk.length !== PSK_SIZE) {
    const got = Buffer.isBuffer(psk) ? `${psk.length} bytes` : typeof psk;
    throw new Error(`migration key must be ${PSK_SIZE} bytes, got ${got}`);
  }
}

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

function frameNonce(counter: number): Buffer {
  // 4 zero bytes || u64 BE counter; a Number counter is exact far beyond any real stream.
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(Math.floor(counter / 2 ** 32), 4);
  nonce.writeUInt32BE(counter >>> 0, 8);
  return nonce;
}

/** Shows what a non-roam peer sent, safe for a terminal. */
function printable(b: Buffer): string {
  return b
    .subarray(0, 16)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
}

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
    if (!Number.isInteger(type) || type < 1 || type > 255) {
      throw new RangeError(
        `message type must be an integer 1..255 (0 is the handshake's FINISHED), got ${type}`,
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
    const peerPublic = peer.subarray(8, 40);
    const peerNonce = peer.subarray(40, 72);
    const ownPublic = this.hello.subarray(8, 40);
    const ownNonce = this.hello.subarray(40, 72);
    let shared: Buffer;
    try {
      const publicKey = createPublicKey({
        key: Buffer.concat([X25519_SPKI_PREFIX, peerPublic]),
        format: 'der',
        type: 'spki',
      });
      shared = diffieHellman({ privateKey: this.privateKey!, publicKey });
    } catch (err) {
      throw new ChannelError(
        'handshake',
        `migration handshake with ${this.remote} failed: the peer sent an invalid X25519 public key`,
        { cause: err },
      );
    }
    // The ephemeral private key is not needed again; dropping it keeps past sessions secret.
    this.privateKey = undefined;
    const client = this.role === 'client';
    const [clientPublic, serverPublic] = client ? [ownPublic, peerPublic] : [peerPublic, ownPublic];
    const [clientNonce, serverNonce] = client ? [ownNonce, peerNonce] : [peerNonce, ownNonce];
    const info = Buffer.concat([HKDF_INFO, clientPublic, serverPublic, clientNonce, serverNonce]);
    const okm = Buffer.from(hkdfSync('sha256', shared, this.psk, info, 64));
    const clientToServer = createSecretKey(okm.subarray(0, 32));
    const serverToClient = createSecretKey(okm.subarray(32, 64));
    this.sendKey = client ? clientToServer : serverToClient;
    this.recvKey = client ? serverToClient : clientToServer;
    const finished = Buffer.concat(this.seal(FINISHED, EMPTY));
    // The server's reply and its FINISHED go out in one write.
    this.write(client ? finished : Buffer.concat([this.hello, finished]));
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
    const header = Buffer.alloc(LENGTH_SIZE);
    header.writeUInt32BE(1 + payload.length + TAG_SIZE, 0);
    const cipher = createCipheriv('aes-256-gcm', this.sendKey!, frameNonce(this.sendCounter++), {
      authTagLength: TAG_SIZE,
    });
    cipher.setAAD(header);
    const t = cipher.update(Buffer.of(type));
    const body = cipher.update(payload);
    const rest = cipher.final();
    if (body.length < 65536) return [Buffer.concat([header, t, body, rest, cipher.getAuthTag()])];
    return [Buffer.concat([header, t]), body, Buffer.concat([rest, cipher.getAuthTag()])];
  }

  private open(header: Buffer, body: Buffer): Message {
    const frame = this.recvCounter++;
    const decipher = createDecipheriv('aes-256-gcm', this.recvKey!, frameNonce(frame), {
      authTagLength: TAG_SIZE,
    });
    decipher.setAAD(header);
    decipher.setAuthTag(body.subarray(body.length - TAG_SIZE));
    const plain = decipher.update(body.subarray(0, body.length - TAG_SIZE));
    try {
      decipher.final();
    } catch {
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
    return { type: plain[0], payload: plain.subarray(1) };
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
