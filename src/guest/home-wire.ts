// The messages of a VM's session with its home, over an encrypted channel the VM
// opens (src/migrate/keyed.ts). Relay frames carry the bytes of client
// connections that home accepted on the VM's published ports; their sequence
// numbers are byte offsets in each direction, so either end can resume a stream
// after the session breaks or the VM moves.
import { WasiError, Errno } from './errno.js';

export const Home = {
  HELLO: 1, // VM -> home, JSON Hello
  WELCOME: 2, // home -> VM, JSON Welcome
  REFUSED: 3, // home -> VM, JSON { reason }
  OPEN: 10, // home -> VM, JSON Open: a client connected to a published port
  DATA: 11, // both, binary: bytes of a stream from offset `seq`
  ACK: 12, // both, binary: every byte before `seq` is taken (seq = fin + 1 acknowledges the end)
  FIN: 13, // both, binary: the sender's bytes end at `seq`
  RST: 14, // both, binary: the stream is gone
  CMD: 20, // home -> VM, JSON Command
  RESULT: 21, // VM -> home, JSON Result
  ASK: 22, // VM -> home, JSON Ask
  ANSWER: 23, // home -> VM, JSON Answer
} as const;

export interface StreamPosition {
  sid: number;
  /** Bytes received from the other end so far (the next offset expected). */
  recvNext: number;
}
export interface Hello {
  job: string;
  /** The VM's id (for `roam jobs`). */
  vm: string;
  token: string;
  /** The highest stream id the VM has heard of: home re-opens any above it. */
  maxSid: number;
  streams: Array<StreamPosition & { sendAcked: number }>;
}
export interface Welcome {
  token: string;
  streams: StreamPosition[];
}
export interface Open {
  sid: number;
  port: number;
  peer: string;
}
export interface Command {
  id: number;
  op: 'migrate' | 'fork' | 'stop';
  /** migrate and fork: the destination cstrap, its key (hex) and the arbiter to ask. */
  to?: string;
  key?: string;
  arbiter?: string;
}
export interface Result {
  id: number;
  ok: boolean;
  error?: string;
  result?: Record<string, unknown>;
}
export interface Ask {
  id: number;
  op: 'topup' | 'destination';
  reason: string;
  seconds: number;
}
export interface Answer {
  id: number;
  ok: boolean;
  error?: string;
  to?: string;
  key?: string;
  arbiter?: string;
}

/** Keepalives on the session, both ways: a silent link is noticed within SESSION_SILENT_MS. */
export const SESSION_KEEPALIVE_MS = 1_000;
export const SESSION_SILENT_MS = 5_000;

/** How many unread bytes home may send ahead of the program (flow control). */
export const RELAY_WINDOW = 256 * 1024;

/** The largest relay payload: a frame stays well under the channel's message limit. */
export const MAX_RELAY_CHUNK = 64 * 1024;
const HEADER = 10; // sid u32, seq u48

export interface RelayFrame {
  sid: number;
  seq: number;
  data: Buffer;
}

export function encodeRelay(sid: number, seq: number, data?: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(HEADER + (data?.length ?? 0));
  b.writeUInt32BE(sid, 0);
  b.writeUIntBE(seq, 4, 6);
  if (data) b.set(data, HEADER);
  return b;
}

/** A relay frame from the wire; anything malformed is the peer's fault and ends the session. */
export function decodeRelay(b: Buffer): RelayFrame {
  if (b.length < HEADER) throw new Error(`relay frame of ${b.length} bytes (at least ${HEADER})`);
  return { sid: b.readUInt32BE(0), seq: b.readUIntBE(4, 6), data: b.subarray(HEADER) };
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parse a JSON message and check each field the reader will use. */
export function parseHomeJson<T>(
  b: Buffer,
  what: string,
  check: (o: Record<string, unknown>) => boolean,
): T {
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch {
    throw new Error(`home session: ${what} is not JSON`);
  }
  if (!isObj(v) || !check(v)) throw new Error(`home session: malformed ${what}`);
  return v as T;
}

const positions = (v: unknown, extra: boolean): boolean =>
  Array.isArray(v) &&
  v.length <= 1_000_000 &&
  v.every(
    (s) => isObj(s) && isCount(s.sid) && isCount(s.recvNext) && (!extra || isCount(s.sendAcked)),
  );

export const checks = {
  hello: (o: Record<string, unknown>) =>
    typeof o.job === 'string' &&
    typeof o.vm === 'string' &&
    typeof o.token === 'string' &&
    isCount(o.maxSid) &&
    positions(o.streams, true),
  welcome: (o: Record<string, unknown>) =>
    typeof o.token === 'string' && positions(o.streams, false),
  open: (o: Record<string, unknown>) =>
    isCount(o.sid) && isCount(o.port) && typeof o.peer === 'string',
  command: (o: Record<string, unknown>) =>
    isCount(o.id) && (o.op === 'migrate' || o.op === 'fork' || o.op === 'stop'),
  result: (o: Record<string, unknown>) => isCount(o.id) && typeof o.ok === 'boolean',
  ask: (o: Record<string, unknown>) =>
    isCount(o.id) && (o.op === 'topup' || o.op === 'destination') && typeof o.reason === 'string',
  answer: (o: Record<string, unknown>) => isCount(o.id) && typeof o.ok === 'boolean',
};

export const toJson = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** What a program sees on a relayed stream that home lost (or that never resumed). */
export const resetError = (): WasiError => new WasiError(Errno.CONNRESET);
