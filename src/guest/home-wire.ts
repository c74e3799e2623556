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
  /**
   * An arriving copy that is not yet committed: the migration it arrives by. Home
   * holds the HELLO, unanswered, until that migration is decided: WELCOME (and the
   * clients' bytes) go out with the commit, REFUSED with the abort. It saves the
   * round trip of a HELLO after the start.
   */
  migration?: string;
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
/** How a migration home orders should go (`roam migrate JOB --max-downtime ...`); each optional. */
export interface Tuning {
  maxDowntimeMs?: number;
  /** Bytes per second. */
  maxBandwidth?: number;
  throttle?: boolean;
  compress?: 'auto' | 'always' | 'never';
  maxRounds?: number;
  windowMs?: number;
}

export interface Command {
  id: number;
  op: 'migrate' | 'fork' | 'stop';
  /** migrate and fork: the destination cstrap, its key (hex) and the arbiter to ask. */
  to?: string;
  key?: string;
  arbiter?: string;
  tuning?: Tuning;
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
    positions(o.streams, true) &&
    (o.migration === undefined ||
      (typeof o.migration === 'string' && /^[0-9a-f]{32}$/.test(o.migration))),
  welcome: (o: Record<string, unknown>) =>
    typeof o.token === 'string' && positions(o.streams, false),
  open: (o: Record<string, unknown>) =>
    isCount(o.sid) && isCount(o.port) && typeof o.peer === 'string',
  command: (o: Record<string, unknown>) =>
    isCount(o.id) &&
    (o.op === 'migrate' || o.op === 'fork' || o.op === 'stop') &&
    (o.tuning === undefined || tuningProblem(o.tuning) === null),
  result: (o: Record<string, unknown>) => isCount(o.id) && typeof o.ok === 'boolean',
  ask: (o: Record<string, unknown>) =>
    isCount(o.id) && (o.op === 'topup' || o.op === 'destination') && typeof o.reason === 'string',
  answer: (o: Record<string, unknown>) => isCount(o.id) && typeof o.ok === 'boolean',
};

const inRange = (v: unknown, lo: number, hi: number): boolean =>
  v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi);

/**
 * What is wrong with a migration's tuning from the network (home's API or its
 * session: hostile bytes), or null. The bounds are the CLI's, loosely.
 */
export function tuningProblem(t: unknown): string | null {
  if (!isObj(t)) return 'tuning is not an object';
  const known = ['maxDowntimeMs', 'maxBandwidth', 'throttle', 'compress', 'maxRounds', 'windowMs'];
  const extra = Object.keys(t).find((k) => !known.includes(k));
  if (extra) return `unknown tuning field ${extra}`;
  if (!inRange(t.maxDowntimeMs, 0.1, 600_000)) return 'maxDowntimeMs must be 0.1 ms to 10 min';
  if (!inRange(t.maxBandwidth, 1, 1e12)) return 'maxBandwidth must be 1 B/s to 1 TB/s';
  if (t.throttle !== undefined && typeof t.throttle !== 'boolean') return 'throttle is a boolean';
  if (t.compress !== undefined && !['auto', 'always', 'never'].includes(t.compress as string))
    return 'compress is auto, always or never';
  if (!inRange(t.maxRounds, 1, 1000) || (t.maxRounds !== undefined && !isCount(t.maxRounds)))
    return 'maxRounds must be a whole number, 1 to 1000';
  if (!inRange(t.windowMs, 1, 3_600_000) || (t.windowMs !== undefined && !isCount(t.windowMs)))
    return 'windowMs must be a whole number of ms, 1 ms to 1 h';
  return null;
}

export const toJson = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** What a program sees on a relayed stream that home lost (or that never resumed). */
export const resetError = (): WasiError => new WasiError(Errno.CONNRESET);
