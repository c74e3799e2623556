// A channel to a server that holds many keys (home: one per job and per
// destination): the client sends a 16-byte hint of its key in clear ahead of the
// handshake, and the server picks the key by it. The hint is a one-way hash of
// a random 256-bit key, so it tells an eavesdropper nothing it could use; the
// handshake still proves that both ends hold the key itself.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { acceptChannel, Channel, ChannelError, type ChannelOptions } from './channel.js';
import { formatHostPort } from '../util/address.js';

export const HINT_SIZE = 16;

export const keyHint = (psk: Buffer): string =>
  createHash('sha256')
    .update('roam key hint v1\0')
    .update(psk)
    .digest()
    .subarray(0, HINT_SIZE)
    .toString('hex');

/** Connect, name the key by its hint, and run the handshake as the client. */
export function connectKeyed(host: string, port: number, opts: ChannelOptions): Promise<Channel> {
  const socket = net.connect({ host, port, allowHalfOpen: true });
  socket.write(Buffer.from(keyHint(opts.psk), 'hex'));
  return Channel.start(socket, 'client', opts, formatHostPort(host, port), false);
}

/** Read the hint and run the handshake with the key it names (or drop the socket). */
export async function acceptKeyed(
  socket: net.Socket,
  keyFor: (hint: string) => Buffer | undefined,
  opts: Omit<ChannelOptions, 'psk'> = {},
): Promise<{ channel: Channel; hint: string }> {
  const hint = await readHint(socket, opts.timeoutMs ?? 5_000);
  const psk = keyFor(hint);
  if (!psk) {
    socket.destroy();
    throw new ChannelError('handshake', 'a peer named a key this server does not hold');
  }
  const channel = acceptChannel(socket, { ...opts, psk });
  // The hint was read in paused mode: the channel's 'data' listener needs the flow back on.
  socket.resume();
  return { channel: await channel, hint };
}

function readHint(socket: net.Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      cleanup();
      socket.destroy();
      reject(new ChannelError(why === 'timeout' ? 'timeout' : 'handshake', `key hint: ${why}`));
    };
    const timer = setTimeout(() => fail('timeout'), timeoutMs);
    const onReadable = () => {
      const b = socket.read(HINT_SIZE) as Buffer | null;
      if (!b) return;
      cleanup();
      resolve(b.toString('hex'));
    };
    const onEnd = () => fail('closed before the hint');
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
    };
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
  });
}
