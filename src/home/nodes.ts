// What home does with nodes, on the customer's behalf: buy a boot token for a
// node at the broker and boot an empty VM (a cstrap) there; top a job up; close
// it and redeem what is left. The VM never holds the customer's broker key.
import type { BrokerClient } from '../broker/client.js';
import { request as udpRequest, type RequestOptions } from '../host/client.js';
import type { Message } from '../host/protocol.js';
import { reasonName } from '../tokens/issue.js';
import { loaderHash } from '../migrate/loader.js';
import { parseHostPort } from '../util/address.js';
import { RoamError } from '../util/errors.js';

export interface Placement {
  node: string;
  nodeId: string;
  token: Buffer;
  /** The job's key on that node (hex): the cstrap's migration key, and it signs node requests. */
  key: string;
  tokenJob: string;
  cstrap: string;
  vmId: string;
}

/** A node request; a node that does not answer is a timeout the caller can name. */
async function request(
  node: string,
  req: Parameters<typeof udpRequest>[1],
  o?: RequestOptions,
): Promise<Message> {
  try {
    return await udpRequest(node, req, o);
  } catch (err) {
    throw new RoamError('node-unreachable', `node ${node}: ${(err as Error).message}`, {
      kind: 'timeout',
    });
  }
}

function expect<T extends Message['type']>(
  m: Message,
  type: T,
  node: string,
): Extract<Message, { type: T }> {
  if (m.type === type) return m as Extract<Message, { type: T }>;
  const why = m.type === 'REFUSED' ? reasonName(m.reason) : `a ${m.type} reply`;
  throw new RoamError('node-refused', `node ${node} refused: ${why}`, { kind: 'refused' });
}

/** Buy `units` for a job on `node` and boot an empty VM there. */
export async function acquire(
  broker: BrokerClient,
  node: string,
  o: { units: number; memoryMiB?: number; ports?: number },
): Promise<Placement> {
  const pong = expect(await request(node, { type: 'PING' }), 'PONG', node);
  const b = await broker.buy({
    node: pong.nodeId,
    count: o.units,
    memoryMiB: o.memoryMiB,
    ports: o.ports,
    loaderSha256: loaderHash(),
  });
  const acc = expect(await request(node, { type: 'BOOT', token: b.token }), 'ACCEPTED', node);
  // A node whose cstraps listen on every interface reports 0.0.0.0: reach it where the node was reached.
  const { host } = parseHostPort(node);
  const cstrap = acc.addr.replace(
    /^(0\.0\.0\.0|\[::\]|::)(?=:\d+$)/,
    host.includes(':') ? `[${host}]` : host,
  );
  return {
    node,
    nodeId: pong.nodeId,
    token: b.token,
    key: b.key,
    tokenJob: b.jobId,
    cstrap,
    vmId: acc.vmId,
  };
}

/** Buy `units` more for the job and deliver them to its node. */
export async function topUp(
  broker: BrokerClient,
  p: { node: string; tokenJob: string; key: string },
  units: number,
): Promise<number> {
  const jobId = Buffer.from(p.tokenJob, 'hex');
  const key = Buffer.from(p.key, 'hex');
  const r = await broker.topup(p.tokenJob, units);
  const s = expect(await request(p.node, { type: 'STATUS', jobId }, { key }), 'BALANCE', p.node);
  if (s.credited >= r.released) return s.credited - s.spent;
  const m = await request(
    p.node,
    {
      type: 'TOPUP',
      jobId,
      element: Buffer.from(r.element, 'hex'),
      units: r.released - s.credited,
    },
    { key },
  );
  if (m.type === 'REFUSED' && reasonName(m.reason) === 'already-credited') return 0;
  const bal = expect(m, 'BALANCE', p.node);
  return bal.credited - bal.spent;
}

/** Close the job on its node and redeem the unspent units (best effort: a node that is gone keeps them). */
export async function refund(
  broker: BrokerClient,
  p: { node: string; tokenJob: string; key: string },
): Promise<number> {
  const m = expect(
    await request(
      p.node,
      { type: 'REFUND', jobId: Buffer.from(p.tokenJob, 'hex') },
      { key: Buffer.from(p.key, 'hex') },
    ),
    'CERT',
    p.node,
  );
  return (await broker.redeem(m.certificate)).units;
}

/** The job's balance on its node (credited minus spent). */
export async function status(p: { node: string; tokenJob: string; key: string }): Promise<number> {
  const jobId = Buffer.from(p.tokenJob, 'hex');
  const s = expect(
    await request(p.node, { type: 'STATUS', jobId }, { key: Buffer.from(p.key, 'hex') }),
    'BALANCE',
    p.node,
  );
  return s.credited - s.spent;
}

/** A node's id and free memory (PING). */
export async function ping(node: string): Promise<{ nodeId: string; freeMiB: number }> {
  const m = expect(
    await request(node, { type: 'PING' }, { retries: 1, timeoutMs: 300 }),
    'PONG',
    node,
  );
  return { nodeId: m.nodeId, freeMiB: m.freeMiB };
}
