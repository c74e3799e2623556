// The migration channel's wire format and cryptography (channel.ts is the
// connection that uses them): constants, errors, the key schedule, and sealing and
// opening one frame.
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { RoamError } from '../util/errors.js';

export const CHANNEL_MAGIC = Buffer.from('ROAMMIG1', 'latin1');
export const HELLO_SIZE = 72;
export const PSK_SIZE = 32;
/** Largest payload of one message. */
export const MAX_MESSAGE_PAYLOAD = 16 * 1024 * 1024;
export const TAG_SIZE = 16;
export const LENGTH_SIZE = 4;
/** Largest value of a frame's length field: type byte + payload + tag. */
export const MAX_FRAME_LENGTH = MAX_MESSAGE_PAYLOAD + 1 + TAG_SIZE;
export const MIN_FRAME_LENGTH = 1 + TAG_SIZE;
/** Message type 0 is the handshake's FINISHED, 255 a keepalive (never delivered); callers use 1..254. */
export const FINISHED = 0;
export const KEEPALIVE = 255;
export const HKDF_INFO = Buffer.from('roam migration v1', 'latin1');
/** DER SubjectPublicKeyInfo header of an X25519 key; the raw 32-byte key follows it. */
export const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Stop reading from the socket while this many decrypted bytes wait for the consumer (receive back-pressure). */
export const RECEIVE_HIGH_WATER = 32 * 1024 * 1024;
export const KEY_HINT = '(check --key / $ROAM_HOME/checkpoint.key)';
export const EMPTY = Buffer.alloc(0);
export const KEEPALIVE_BODY = Buffer.alloc(1);

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

export type Role = 'client' | 'server';

export interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

export interface NextWaiter extends Waiter<Message | null> {
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

export function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (code && SOCKET_REASONS[code]) ?? err.message;
}

/** "host:port", with brackets around an IPv6 address. */

export function checkPsk(psk: Buffer): void {
  if (!Buffer.isBuffer(psk) || psk.length !== PSK_SIZE) {
    const got = Buffer.isBuffer(psk) ? `${psk.length} bytes` : typeof psk;
    throw new Error(`migration key must be ${PSK_SIZE} bytes, got ${got}`);
  }
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

export function frameNonce(counter: number): Buffer {
  // 4 zero bytes || u64 BE counter; a Number counter is exact far beyond any real stream.
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(Math.floor(counter / 2 ** 32), 4);
  nonce.writeUInt32BE(counter >>> 0, 8);
  return nonce;
}

/** Shows what a non-roam peer sent, safe for a terminal. */
export function printable(b: Buffer): string {
  return b
    .subarray(0, 16)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
}

/** Both directions' AES-256-GCM keys from the X25519 secret, salted with the PSK and bound to both hellos. */
export function deriveKeys(
  client: boolean,
  psk: Buffer,
  privateKey: KeyObject,
  ownHello: Buffer,
  peerHello: Buffer,
  remote: string,
): { send: KeyObject; recv: KeyObject } {
  const peerPublic = peerHello.subarray(8, 40);
  const peerNonce = peerHello.subarray(40, 72);
  const ownPublic = ownHello.subarray(8, 40);
  const ownNonce = ownHello.subarray(40, 72);
  let shared: Buffer;
  try {
    const publicKey = createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, peerPublic]),
      format: 'der',
      type: 'spki',
    });
    shared = diffieHellman({ privateKey, publicKey });
  } catch (err) {
    throw new ChannelError(
      'handshake',
      `migration handshake with ${remote} failed: the peer sent an invalid X25519 public key`,
      { cause: err },
    );
  }
  const [clientPublic, serverPublic] = client ? [ownPublic, peerPublic] : [peerPublic, ownPublic];
  const [clientNonce, serverNonce] = client ? [ownNonce, peerNonce] : [peerNonce, ownNonce];
  const info = Buffer.concat([HKDF_INFO, clientPublic, serverPublic, clientNonce, serverNonce]);
  const okm = Buffer.from(hkdfSync('sha256', shared, psk, info, 64));
  const clientToServer = createSecretKey(okm.subarray(0, 32));
  const serverToClient = createSecretKey(okm.subarray(32, 64));
  return client
    ? { send: clientToServer, recv: serverToClient }
    : { send: serverToClient, recv: clientToServer };
}

/** One frame, as pieces to write in order: large payloads are not copied once more to join them. */
export function sealFrame(
  key: KeyObject,
  counter: number,
  type: number,
  payload: Uint8Array,
): Buffer[] {
  const header = Buffer.alloc(LENGTH_SIZE);
  header.writeUInt32BE(1 + payload.length + TAG_SIZE, 0);
  const cipher = createCipheriv('aes-256-gcm', key, frameNonce(counter), {
    authTagLength: TAG_SIZE,
  });
  cipher.setAAD(header);
  const t = cipher.update(Buffer.of(type));
  const body = cipher.update(payload);
  const rest = cipher.final();
  if (body.length < 65536) return [Buffer.concat([header, t, body, rest, cipher.getAuthTag()])];
  return [Buffer.concat([header, t]), body, Buffer.concat([rest, cipher.getAuthTag()])];
}

/** The message in a frame, or null if it fails authentication. */
export function openFrame(
  key: KeyObject,
  counter: number,
  header: Buffer,
  body: Buffer,
): Message | null {
  const decipher = createDecipheriv('aes-256-gcm', key, frameNonce(counter), {
    authTagLength: TAG_SIZE,
  });
  decipher.setAAD(header);
  decipher.setAuthTag(body.subarray(body.length - TAG_SIZE));
  const plain = decipher.update(body.subarray(0, body.length - TAG_SIZE));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return { type: plain[0], payload: plain.subarray(1) };
}
