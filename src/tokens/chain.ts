// One-way hash chains (thesis 8.2): s_{i+1} = f(s_i), f = SHA-256. The node
// trusts the anchor s_n from a signed boot token; element s_{n-k} proves k
// units because only the broker, holding s_0, can compute it.
import { createHash, timingSafeEqual } from 'node:crypto';

export const ELEMENT_BYTES = 32;
// Upper bound on k in one message, so that verifying costs at most this many
// hashes (~20 ms); it also bounds what one purchase can buy.
export const MAX_UNITS = 10_000;

export const f = (x: Buffer): Buffer => createHash('sha256').update(x).digest();

export function iterate(x: Buffer, times: number): Buffer {
  for (let i = 0; i < times; i++) x = f(x);
  return x;
}

// True when f^k(element) equals the last accepted element (initially s_n).
export function verifyElement(element: Buffer, k: number, last: Buffer): boolean {
  if (!Number.isInteger(k) || k < 1 || k > MAX_UNITS) return false;
  if (element.length !== ELEMENT_BYTES || last.length !== ELEMENT_BYTES) return false;
  return timingSafeEqual(iterate(element, k), last);
}
