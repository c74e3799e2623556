// Customer-side client for the node daemon's datagrams: send, wait for the
// reply with the same request id, retransmit on timeout. Not privileged: the
// daemon never loads this file.
import { RoamError } from '../util/errors.js';
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { decodeMessage, encodeMessage, type Message } from './protocol.js';
import { mac, REQUEST_LABEL } from '../tokens/mac.js';
import { parseHostPort } from '../util/address.js';

export interface RequestOptions {
  timeoutMs?: number;
  retries?: number;
  /** The job's key (TOKEN.key): signs STATUS, TOPUP and REFUND. */
  key?: Buffer;
}

type Request = Message extends infer T
  ? T extends Message
    ? Omit<T, 'reqId' | 'mac'> & { mac?: Buffer }
    : never
  : never;

/** The datagram of a request, its job MAC (if it has one) computed under `key`. */
export function signedDatagram(req: Request, reqId: number, key?: Buffer): Buffer {
  const d = encodeMessage({ mac: Buffer.alloc(32), ...req, reqId });
  if (key && 'jobId' in req && req.type !== 'ACCEPTED' && req.type !== 'BALANCE')
    mac(key, REQUEST_LABEL, d.subarray(0, d.length - 32)).copy(d, d.length - 32);
  return d;
}

// Resolves with the reply (which may be REFUSED); rejects only when no reply came.
export async function request(
  target: string,
  req: Request,
  o: RequestOptions = {},
): Promise<Message> {
  const { host, port } = parseHostPort(target);
  const reqId = randomInt(1, 2 ** 31);
  const datagram = signedDatagram(req, reqId, o.key);
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const tries = 1 + (o.retries ?? 4);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Message>((resolve, reject) => {
      let sent = 0;
      const send = () => {
        if (sent++ === tries)
          return reject(
            new RoamError('no-answer', `no answer from ${target} after ${tries} tries`, {
              kind: 'timeout',
            }),
          );
        socket.send(datagram, port, host, (e) => e && reject(e));
        timer = setTimeout(send, (o.timeoutMs ?? 500) * Math.min(sent, 4)); // back off a little
      };
      socket.on('message', (buf) => {
        const m = decodeMessage(buf);
        if (m.ok && m.value.reqId === reqId) resolve(m.value);
      });
      socket.on('error', reject);
      send();
    });
  } finally {
    clearTimeout(timer);
    socket.close();
  }
}
