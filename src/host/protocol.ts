// The node daemon's datagram format: [type u8][request id u32][body]. Requests
// have types below 0x80, replies 0x80 and above; the daemon never answers a
// reply type, so two daemons cannot be made to bounce datagrams forever.
import { decode, encode, type Layout, type Rec } from '../tokens/codec.js';
import { TOPUP } from '../tokens/topup.js';
import type { Parsed } from '../tokens/reasons.js';

export const MAX_DATAGRAM = 1200; // fits any path MTU without fragmentation

// mac: HMAC(job key, REQUEST_LABEL, the datagram before it); see tokens/mac.ts.
const JOB = [
  ['jobId', 16],
  ['mac', 32],
] as const;
export const MESSAGES = {
  PING: [0x01, []],
  BOOT: [0x02, [['token', 'rest']]],
  TOPUP: [0x03, [...TOPUP, ['mac', 32]]],
  STATUS: [0x04, JOB],
  REFUND: [0x05, JOB],
  PONG: [
    0x81,
    [
      ['nodeId', 'str'],
      ['freeMiB', 'u32'],
      ['price', 'u32'],
    ],
  ],
  ACCEPTED: [
    0x82,
    [
      ['jobId', 16],
      ['vmId', 'str'],
      ['addr', 'str'],
      ['balance', 'u32'],
    ],
  ],
  BALANCE: [
    0x83,
    [
      ['jobId', 16],
      ['balance', 'u32'],
      ['credited', 'u32'],
      ['spent', 'u32'],
      ['closed', 'u8'],
      ['state', 'u8'],
    ],
  ], // state: STATES in packetd.ts
  CERT: [0x85, [['certificate', 'rest']]],
  REFUSED: [0xff, [['reason', 'u8']]],
} as const satisfies Record<string, readonly [number, Layout]>;

type M = typeof MESSAGES;
export type Message = { [T in keyof M]: { type: T; reqId: number } & Rec<M[T][1]> }[keyof M];

const BY_CODE = new Map(
  Object.entries(MESSAGES).map(([name, [code]]) => [code as number, name as keyof M]),
);

export function encodeMessage(m: Message): Buffer {
  const [code, layout] = MESSAGES[m.type];
  const head = Buffer.from([code, 0, 0, 0, 0]);
  head.writeUInt32BE(m.reqId, 1);
  return Buffer.concat([head, encode(layout as Layout, m as never)]);
}

export function decodeMessage(buf: Buffer): Parsed<Message> {
  if (buf.length > MAX_DATAGRAM) return { ok: false, reason: 'oversize' };
  if (buf.length < 5) return { ok: false, reason: 'truncated' };
  const type = BY_CODE.get(buf[0]);
  if (!type) return { ok: false, reason: 'unknown-type' };
  const body = decode(MESSAGES[type][1] as Layout, buf.subarray(5));
  if (!body.ok) return body;
  return { ok: true, value: { ...body.value, type, reqId: buf.readUInt32BE(1) } as Message };
}
