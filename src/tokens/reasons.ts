// Reason codes for every refusal. The code on the wire is the index, so the
// order is part of the protocol: append new reasons, never reorder.
export const REASONS = [
  'ok',
  'truncated',
  'oversize',
  'malformed',
  'unknown-type',
  'bad-version',
  'forged',
  'expired',
  'replayed',
  'wrong-node',
  'chain-mismatch',
  'unit-limit',
  'unknown-job',
  'job-closed',
  'already-credited',
  'no-launcher',
  'launch-failed',
  'no-capacity',
  'job-exists',
  'unauthenticated', // a job request without a valid MAC under the job's key
  'rate-limited', // this source (or the node) spent its hashing budget for now
  'no-state', // the job table could not be written, so nothing was done
] as const;
export type Reason = (typeof REASONS)[number];

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: Reason };
