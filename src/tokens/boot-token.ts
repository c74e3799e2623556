// The boot token (thesis 8.2, Figure 8.1): what a customer sends to a node in
// one datagram to get an empty VM. Minted and HMAC-signed by the broker with
// the node's secret (issue.ts); the node checks it without talking to anyone.
import { decode, type Rec } from './codec.js';
import { MAX_UNITS, verifyElement } from './chain.js';
import { MAC_BYTES, macOk } from './mac.js';
import type { Parsed } from './reasons.js';

export const BOOT_TOKEN_VERSION = 1;
export const BOOT_TOKEN_LABEL = 'roam-boot-token-v1';

export const BOOT_TOKEN_BODY = [
  ['version', 'u8'],
  ['nodeId', 'str'],
  ['jobId', 16],
  ['anchor', 32],
  ['payment', 32],
  ['units', 'u32'], // s_n, s_{n-k}, k
  ['memoryMiB', 'u32'],
  ['cpuShare', 'u16'],
  ['ports', 'u16'],
  ['lifetimeS', 'u32'],
  ['loaderSha256', 32],
  ['expiry', 'u32'],
  ['nonce', 16],
] as const;
const FULL = [...BOOT_TOKEN_BODY, ['mac', MAC_BYTES]] as const;

// Parses without checking the signature (the customer side reads its own token).
export const decodeBootToken = (buf: Buffer): Parsed<BootToken> =>
  buf[0] === BOOT_TOKEN_VERSION || !buf.length
    ? decode(FULL, buf)
    : { ok: false, reason: 'bad-version' };

export type BootToken = Rec<typeof FULL>;

// Everything a node checks that needs no state; replay is the caller's job.
// Node id first: a token for another node would otherwise look merely forged.
export function verifyBootToken(
  buf: Buffer,
  secret: Buffer,
  nodeId: string,
  nowS: number,
): Parsed<BootToken> {
  const p = decodeBootToken(buf);
  if (!p.ok) return p;
  const t = p.value;
  if (t.nodeId !== nodeId) return { ok: false, reason: 'wrong-node' };
  if (!macOk(secret, BOOT_TOKEN_LABEL, buf.subarray(0, buf.length - MAC_BYTES), t.mac))
    return { ok: false, reason: 'forged' };
  if (t.expiry <= nowS) return { ok: false, reason: 'expired' };
  if (t.units < 1 || t.units > MAX_UNITS) return { ok: false, reason: 'unit-limit' };
  if (!verifyElement(t.payment, t.units, t.anchor)) return { ok: false, reason: 'chain-mismatch' };
  return p;
}
