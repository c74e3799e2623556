// Customer-side client for the node daemon's datagrams: send, wait for the
// reply with the same request id, retransmit on timeout. Not privileged: the
// daemon never loads this file.
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { decodeMessage, encodeMessage, type Message } from './protocol.js';

export interface RequestOptions {
  timeoutMs?: number;
  retries?: number;
}

import { parseHostPort } from '../util/address.js';

type Request = Message extends infer T ? (T extends Message ? Omit<T, 'reqId'> : never) : never;

// Resolves with the reply (which may be REFUSED); rejects only when no reply came.
export async function request(
  target: string,
  req: Request,
  o: RequestOptions = {},
): Promise<Message> {
  const { host, port } = parseHostPort(target);
  const reqId = randomInt(1, 2 ** 31);
  const datagram = encodeMessage({ ...req, reqId });
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const tries = 1 + (o.retries ?? 4);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Message>((resolve, reject) => {
      let sent = 0;
      const send = () => {
        if (sent++ === tries)
          return reject(new Error(`no answer from ${target} after ${tries} tries`));
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
