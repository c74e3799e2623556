// A redemption certificate (thesis 8.2): the node's signed statement of how a
// closed job's credit was used, which the broker refunds once.
import { randomBytes } from 'node:crypto';
import { decode, encode, type Rec } from './codec.js';
import { MAC_BYTES, mac, macOk } from './mac.js';
import type { Parsed } from './reasons.js';

const LABEL = 'roam-redemption-certificate-v1';
const BODY = [
  ['version', 'u8'], ['certId', 16], ['nodeId', 'str'], ['jobId', 16],
  ['spent', 'u32'], ['unspent', 'u32'], ['last', 32], ['issued', 'u32'],
] as const;
const FULL = [...BODY, ['mac', MAC_BYTES]] as const;

export type Certificate = Rec<typeof FULL>;
export type CertificateFields = Omit<Rec<typeof BODY>, 'version' | 'certId'>;

export function signCertificate(fields: CertificateFields, secret: Buffer): Buffer {
  const body = encode(BODY, { ...fields, version: 1, certId: randomBytes(16) });
  return Buffer.concat([body, mac(secret, LABEL, body)]);
}

export const decodeCertificate = (buf: Buffer): Parsed<Certificate> => {
  if (buf.length >= 1 && buf[0] !== 1) return { ok: false, reason: 'bad-version' };
  return decode(FULL, buf);
};

export function verifyCertificate(buf: Buffer, secret: Buffer): Parsed<Certificate> {
  const p = decodeCertificate(buf);
  if (p.ok && !macOk(secret, LABEL, buf.subarray(0, buf.length - MAC_BYTES), p.value.mac)) return { ok: false, reason: 'forged' };
  return p;
}
