// HMAC-SHA256 with a per-purpose label, so that a node-signed certificate can
// never be replayed as a boot token (both use the same node secret).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAC_BYTES = 32;

export const mac = (secret: Buffer, label: string, body: Buffer): Buffer =>
  createHmac('sha256', secret).update(label).update('\0').update(body).digest();

export const macOk = (secret: Buffer, label: string, body: Buffer, tag: Buffer): boolean =>
  tag.length === MAC_BYTES && timingSafeEqual(mac(secret, label, body), tag);

// The key of a job's VM: the broker gives it to the customer with the boot token;
// the node derives the same from its secret, so it never crosses the network.
export const vmKey = (nodeSecret: Buffer, jobId: Buffer): Buffer =>
  mac(nodeSecret, 'roam-vm-key-v1', jobId);

// A customer's request about its job (STATUS, TOPUP, REFUND) ends in a MAC under
// the job's key, so a job id alone (it travels in clear in the BOOT) gives nothing.
export const REQUEST_LABEL = 'roam-job-request-v1';
