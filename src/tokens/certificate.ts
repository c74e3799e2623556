// A redemption certificate (thesis 8.2): the node's signed statement of how a
// closed job's credit was used, which the broker refunds once (issue.ts checks it).
import { randomBytes } from 'node:crypto';
import { encode, type Rec } from './codec.js';
import { MAC_BYTES, mac } from './mac.js';

export const CERTIFICATE_LABEL = 'roam-redemption-certificate-v1';
const BODY = [
  ['version', 'u8'],
  ['certId', 16],
  ['nodeId', 'str'],
  ['jobId', 16],
  ['spent', 'u32'],
  ['unspent', 'u32'],
  ['last', 32],
  ['issued', 'u32'],
] as const;
export const CERTIFICATE = [...BODY, ['mac', MAC_BYTES]] as const;

export function signCertificate(
  fields: Omit<Rec<typeof BODY>, 'version' | 'certId'>,
  secret: Buffer,
): Buffer {
  const body = encode(BODY, { ...fields, version: 1, certId: randomBytes(16) });
  return Buffer.concat([body, mac(secret, CERTIFICATE_LABEL, body)]);
}
