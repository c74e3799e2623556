// A top-up: the next chain element s_{m-k} of a job and its k, proving k more
// units against the last element s_m the node accepted. Needs no signature:
// only the broker can produce elements further down the chain.
import type { Rec } from './codec.js';

export const TOPUP = [
  ['jobId', 16],
  ['element', 32],
  ['units', 'u32'],
] as const;
export type TopUp = Rec<typeof TOPUP>;
