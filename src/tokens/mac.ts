// HMAC-SHA256 with a per-purpose label, so that a node-signed certificate can
// never be replayed as a boot token (both use the same node secret).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAC_BYTES = 32;

export const mac = (secret: Buffer, label: string, body: Buffer): Buffer =>
  createHmac('sha256', secret).update(label).update('\0').update(body).digest();

export const macOk = (secret: Buffer, label: string, body: Buffer, tag: Buffer): boolean =>
  tag.length === MAC_BYTES && timingSafeEqual(mac(secret, label, body), tag);
