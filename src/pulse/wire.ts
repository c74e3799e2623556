// Pulse datagrams (thesis 8.3.1) are DNS messages, so that they pass the NATs and
// firewalls that let DNS through. Each carries one 32-byte value as the first two
// labels of its one question, hex in two 32-character labels (a label holds at
// most 63):
//   SUBSCRIBE  query  HHHH.HHHH.s.pulse TXT    "tell me when the s with H(s) = HHHH is released"
//   RELEASE    query  SSSS.SSSS.r.pulse TXT    "s is released: forward it to H(s)'s subscribers"
//   EVENT      NOTIFY SSSS.SSSS.e.pulse TXT    the rendezvous forwarding s to a subscriber
// The replies are DNS responses with the same id and question and one TXT answer:
// "lease=SECONDS" for a subscription (or "s=SSSS" when s was already released),
// "forwarded=N" for a release. Everything a rendezvous server sees is a random
// value or its hash: nothing about the payload the event invalidates.
import { createHash } from 'node:crypto';
import * as dns from 'dns-packet';

export const HASH_SIZE = 32;
/** DNS over UDP: a message this small needs no EDNS and no fragmenting. */
export const MAX_DATAGRAM = 512;
const OPCODE_NOTIFY = 4;

export type Kind = 'subscribe' | 'release' | 'event';
const LABEL: Record<Kind, string> = { subscribe: 's', release: 'r', event: 'e' };
const KIND: Record<string, Kind> = { s: 'subscribe', r: 'release', e: 'event' };
const NAME = /^([0-9a-f]{32})\.([0-9a-f]{32})\.([sre])\.pulse$/;

/** H, the one-way function: SHA-256. */
export const H = (s: Buffer): Buffer => createHash('sha256').update(s).digest();

export interface Request {
  kind: Kind;
  id: number;
  /** H(s) for a subscription, s for a release or an event. */
  value: Buffer;
}
export interface Reply {
  kind: 'subscribe' | 'release';
  id: number;
  value: Buffer;
  /** Subscription: the lease granted, in seconds. */
  lease?: number;
  /** Subscription whose s was released already. */
  secret?: Buffer;
  /** Release: how many subscribers it was forwarded to. */
  forwarded?: number;
}
export type Datagram = ({ reply: false } & Request) | ({ reply: true } & Reply);

const nameOf = (kind: Kind, v: Buffer): string => {
  const hex = v.toString('hex');
  return `${hex.slice(0, 32)}.${hex.slice(32)}.${LABEL[kind]}.pulse`;
};

export function encodeRequest(r: Request): Buffer {
  if (r.value.length !== HASH_SIZE) throw new Error(`a Pulse value is ${HASH_SIZE} bytes`);
  return dns.encode({
    type: 'query',
    id: r.id,
    flags: r.kind === 'event' ? OPCODE_NOTIFY << 11 : 0,
    questions: [{ type: 'TXT', class: 'IN', name: nameOf(r.kind, r.value) }],
  });
}

export function encodeReply(r: Reply): Buffer {
  const txt =
    r.secret !== undefined
      ? `s=${r.secret.toString('hex')}`
      : r.kind === 'subscribe'
        ? `lease=${r.lease ?? 0}`
        : `forwarded=${r.forwarded ?? 0}`;
  const name = nameOf(r.kind, r.value);
  return dns.encode({
    type: 'response',
    id: r.id,
    flags: dns.AUTHORITATIVE_ANSWER,
    questions: [{ type: 'TXT', class: 'IN', name }],
    answers: [{ type: 'TXT', class: 'IN', name, ttl: 0, data: txt }],
  });
}

/**
 * Decode a datagram from anyone. Returns null for anything that is not exactly
 * one well-formed Pulse message: the decoder faces strangers, so it checks every
 * field it uses and lets dns-packet's own exceptions become a null.
 */
export function decodeDatagram(buf: Buffer): Datagram | null {
  if (buf.length < 12 || buf.length > MAX_DATAGRAM) return null;
  let p: dns.DecodedPacket & { opcode?: string };
  try {
    p = dns.decode(buf);
  } catch {
    return null;
  }
  if (dns.decode.bytes !== buf.length) return null; // trailing bytes
  const q = p.questions;
  if (!Array.isArray(q) || q.length !== 1 || q[0].type !== 'TXT' || q[0].class !== 'IN')
    return null;
  const m = NAME.exec(q[0].name.toLowerCase());
  if (!m || typeof p.id !== 'number') return null;
  const kind = KIND[m[3]];
  const value = Buffer.from(m[1] + m[2], 'hex');
  const notify = p.opcode === 'NOTIFY';
  if (p.type === 'query') {
    if (notify !== (kind === 'event')) return null;
    if ((p.answers?.length ?? 0) !== 0) return null;
    return { reply: false, kind, id: p.id, value };
  }
  if (kind === 'event' || notify || p.answers?.length !== 1) return null;
  const a = p.answers[0];
  if (a.type !== 'TXT' || a.name.toLowerCase() !== q[0].name.toLowerCase()) return null;
  const parts = Array.isArray(a.data) ? a.data : [a.data];
  if (parts.length !== 1) return null;
  const text = Buffer.isBuffer(parts[0]) ? parts[0].toString('latin1') : String(parts[0]);
  return parseReplyText(kind, p.id, value, text);
}

function parseReplyText(kind: Kind, id: number, value: Buffer, text: string): Datagram | null {
  let m: RegExpExecArray | null;
  if (kind === 'subscribe' && (m = /^lease=(\d{1,6})$/.exec(text)))
    return { reply: true, kind, id, value, lease: Number(m[1]) };
  if (kind === 'subscribe' && (m = /^s=([0-9a-f]{64})$/.exec(text)))
    return { reply: true, kind, id, value, secret: Buffer.from(m[1], 'hex') };
  if (kind === 'release' && (m = /^forwarded=(\d{1,9})$/.exec(text)))
    return { reply: true, kind, id, value, forwarded: Number(m[1]) };
  return null;
}
