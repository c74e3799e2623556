// The node's side of `roam tokens`: reading a token, the job's signed UDP
// requests (STATUS, TOPUP, REFUND), and how their answers are shown.
import { InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { decodeBootToken, type BootToken } from '../../tokens/boot-token.js';
import { request, type RequestOptions } from '../../host/client.js';
import { reasonName } from '../../tokens/issue.js';
import type { Message } from '../../host/protocol.js';
import { STATES } from '../../host/packetd.js';
import { emit } from '../options.js';
import { RoamError } from '../../util/errors.js';

export function readToken(file: string): { raw: Buffer; token: BootToken } {
  const raw = readFileSync(file);
  const p = decodeBootToken(raw);
  if (!p.ok) throw new RoamError('bad-token', `${file} is not a boot token (${p.reason})`);
  return { raw, token: p.value };
}

// The reply of the expected type, or an error naming the node's refusal.
export function expect<T extends Message['type']>(
  m: Message,
  type: T,
): Extract<Message, { type: T }> {
  if (m.type === 'REFUSED')
    throw new RoamError('node-refused', `node refused: ${reasonName(m.reason)}`);
  if (m.type !== type)
    throw new RoamError('bad-reply', `unexpected ${m.type} reply from node`, { kind: 'peer' });
  return m as Extract<Message, { type: T }>;
}

export type Balance = Extract<Message, { type: 'BALANCE' }>;
// A refunded job has no balance left to show: its unspent units went back to the broker.
export const balanceLine = (m: Balance) =>
  m.closed
    ? `job ${m.jobId.toString('hex')} closed (refunded): credited ${m.credited}, spent ${m.spent}, vm ${STATES[m.state] ?? 'unknown'}`
    : `job ${m.jobId.toString('hex')} balance ${m.balance} (credited ${m.credited}, spent ${m.spent}), vm ${STATES[m.state] ?? 'unknown'}`;
export const balanceJson = (m: Balance) => ({
  event: 'balance',
  job: m.jobId.toString('hex'),
  balance: m.closed ? null : m.balance,
  credited: m.credited,
  spent: m.spent,
  vm: STATES[m.state] ?? 'unknown',
  closed: Boolean(m.closed),
});

// The job's key signs its requests to the node (STATUS, TOPUP, REFUND): TOKEN.key unless --key.
export const udp = (o: {
  timeout: number;
  retries: number;
  token: string;
  key?: string;
}): RequestOptions => {
  const file = o.key ?? `${o.token}.key`;
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (e) {
    throw new InvalidArgumentError(
      `the job's key ${file}: ${(e as Error).message} (written by roam tokens buy beside the token; or pass --key FILE)`,
    );
  }
  if (key.length !== 32)
    throw new InvalidArgumentError(`${file} is not a job key (32 bytes, from roam tokens buy)`);
  return { timeoutMs: o.timeout, retries: o.retries, key };
};
// Sends s_{n-released} with k = released - credited, so that top-ups whose
// delivery was lost are credited too; the node checks f^k(element) itself.
export async function deliver(
  node: string,
  jobId: Buffer,
  element: Buffer,
  released: number,
  o: RequestOptions,
): Promise<{ already: boolean; balance?: Balance }> {
  const s = expect(await request(node, { type: 'STATUS', jobId }, o), 'BALANCE');
  if (s.credited >= released) return { already: true, balance: s };
  const m = await request(node, { type: 'TOPUP', jobId, element, units: released - s.credited }, o);
  if (m.type === 'REFUSED' && reasonName(m.reason) === 'already-credited') return { already: true }; // a retransmission
  return { already: false, balance: expect(m, 'BALANCE') };
}

/** What a delivery did, on the node: plain or JSON. */
export function report(
  json: boolean | undefined,
  d: { already: boolean; balance?: Balance },
): void {
  const b = d.balance;
  emit(
    json,
    { ...(b ? balanceJson(b) : { event: 'balance' }), event: 'delivered', already: d.already },
    `${d.already ? 'already credited on the node' : 'delivered to the node'}${b ? `: ${balanceLine(b)}` : ''}`,
  );
}
