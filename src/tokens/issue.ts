// The broker's side of the tokens (and the customer's): minting boot tokens,
// starting chains, encoding top-ups, checking redemption certificates, naming
// refusal codes. The node daemon never loads this file: it only verifies and signs.
import { randomBytes } from 'node:crypto';
import { BOOT_TOKEN_BODY, BOOT_TOKEN_LABEL, BOOT_TOKEN_VERSION } from './boot-token.js';
import { CERTIFICATE, CERTIFICATE_LABEL } from './certificate.js';
import { ELEMENT_BYTES } from './chain.js';
import { decode, encode, type Rec } from './codec.js';
import { MAC_BYTES, mac, macOk } from './mac.js';
import { REASONS, type Parsed, type Reason } from './reasons.js';
import { TOPUP, type TopUp } from './topup.js';

export type Certificate = Rec<typeof CERTIFICATE>;
export type BootTokenFields = Omit<Rec<typeof BOOT_TOKEN_BODY>, 'version' | 'nonce'> & {
  nonce?: Buffer;
};

export function mintBootToken(fields: BootTokenFields, secret: Buffer): Buffer {
  const body = encode(BOOT_TOKEN_BODY, {
    ...fields,
    version: BOOT_TOKEN_VERSION,
    nonce: fields.nonce ?? randomBytes(16),
  });
  return Buffer.concat([body, mac(secret, BOOT_TOKEN_LABEL, body)]);
}

/** s_0 of a new chain. */
export const newSeed = (): Buffer => randomBytes(ELEMENT_BYTES);

export const encodeTopUp = (t: TopUp): Buffer => encode(TOPUP, t);
export const decodeTopUp = (buf: Buffer): Parsed<TopUp> => decode(TOPUP, buf);

export const decodeCertificate = (buf: Buffer): Parsed<Certificate> => {
  if (buf.length >= 1 && buf[0] !== 1) return { ok: false, reason: 'bad-version' };
  return decode(CERTIFICATE, buf);
};

export function verifyCertificate(buf: Buffer, secret: Buffer): Parsed<Certificate> {
  const p = decodeCertificate(buf);
  if (
    p.ok &&
    !macOk(secret, CERTIFICATE_LABEL, buf.subarray(0, buf.length - MAC_BYTES), p.value.mac)
  )
    return { ok: false, reason: 'forged' };
  return p;
}

export const reasonName = (code: number): Reason | 'unknown' => REASONS[code] ?? 'unknown';
