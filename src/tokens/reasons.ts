// Reason codes for every refusal. The code on the wire is the index, so the
// order is part of the protocol: append new reasons, never reorder.
// unauthenticated: a job request without a valid MAC under the job's key;
// rate-limited: its source, job or the node spent this second's hashing budget.
const NAMES =
  'ok truncated oversize malformed unknown-type bad-version forged expired replayed wrong-node chain-mismatch unit-limit unknown-job job-closed already-credited no-launcher launch-failed no-capacity job-exists unauthenticated rate-limited';
type Split<S extends string> = S extends `${infer H} ${infer T}` ? [H, ...Split<T>] : [S];
export const REASONS = NAMES.split(' ') as Split<typeof NAMES>;
export type Reason = (typeof REASONS)[number];

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: Reason };
