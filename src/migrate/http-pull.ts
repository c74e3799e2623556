// Pull migration (thesis 8.3, Evil Twin): "VMs boot from an HTTP URI, and
// migration and VM forking happens by actively opening a HTTP connection to the
// source VM". The source serves itself at http://HOST:PORT/v1/vm; the destination
// opens the connection and asks to upgrade it to the migration channel, so only
// the source needs to be reachable (a destination behind a NAT can receive).
// After the 101 the bytes are exactly those of a pushed migration, roles kept:
// the source is the channel's client, the destination its server, and the
// channel's handshake proves the puller holds the job key before a page moves.
import http from 'node:http';
import type net from 'node:net';
import { acceptChannel, Channel } from './channel.js';
import { formatHostPort, parseHostPort } from '../util/address.js';
import { RoamError } from '../util/errors.js';

export const PULL_PATH = '/v1/vm';
export const PROTOCOL = 'roam-migrate/1';

export class PullError extends RoamError {}

/**
 * Serve this VM at http://listen/v1/vm until one puller has upgraded a connection
 * and proved it holds `psk`; resolves with that channel. A puller that fails the
 * handshake is dropped and the next one is waited for.
 */
export function awaitPuller(o: {
  listen: string;
  psk: Buffer;
  timeoutMs?: number;
  onListening?: (uri: string) => void;
}): Promise<Channel> {
  const { host, port } = parseHostPort(o.listen, { allowPortZero: true });
  return new Promise((resolve, reject) => {
    let done = false;
    const server = http.createServer((_req, res) => {
      // Not an upgrade: say what this is, nothing more.
      res.writeHead(426, { upgrade: PROTOCOL, 'content-type': 'text/plain' });
      res.end(`a roam VM: pull it with roam cstrap --boot-uri\n`);
    });
    const timer = setTimeout(() => {
      finish();
      reject(
        new PullError('pull-timeout', `nobody pulled the VM within ${o.timeoutMs} ms`, {
          kind: 'timeout',
        }),
      );
    }, o.timeoutMs ?? 600_000);
    const finish = () => {
      done = true;
      clearTimeout(timer);
      server.close();
    };
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (done || req.url !== PULL_PATH || req.headers.upgrade !== PROTOCOL) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`,
      );
      if (head.length) socket.unshift(head);
      const remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
      Channel.start(socket, 'client', { psk: o.psk, timeoutMs: 10_000 }, remote, true).then(
        (ch) => {
          if (done) return ch.destroy();
          finish();
          resolve(ch);
        },
        () => socket.destroy(), // not the key holder: wait for the next
      );
    });
    server.once('error', (e) => {
      finish();
      reject(new PullError('listen', `cannot serve the VM on ${o.listen}: ${e.message}`));
    });
    server.listen(port, host, () => {
      const a = server.address() as net.AddressInfo;
      o.onListening?.(`http://${formatHostPort(a.address, a.port)}${PULL_PATH}`);
    });
  });
}

/** Open the boot URI and upgrade it (to `protocol`): the raw socket the channel then runs on. */
export function pullSocket(
  uri: string,
  timeoutMs = 10_000,
  protocol = PROTOCOL,
): Promise<net.Socket> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return Promise.reject(
      new PullError('bad-uri', `--boot-uri ${uri} is not a URL`, { kind: 'usage' }),
    );
  }
  if (url.protocol !== 'http:')
    return Promise.reject(
      new PullError('bad-uri', `a boot URI is http://HOST:PORT/PATH, not ${uri}`, {
        kind: 'usage',
      }),
    );
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      path: url.pathname,
      headers: { connection: 'Upgrade', upgrade: protocol },
      timeout: timeoutMs,
    });
    req.on('upgrade', (_res, socket: net.Socket, head: Buffer) => {
      socket.setTimeout(0);
      if (head.length) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res) => {
      res.resume();
      reject(
        new PullError(
          'not-served',
          `${uri} answered HTTP ${res.statusCode}: no VM is served there`,
          {
            kind: 'peer',
          },
        ),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) =>
      reject(
        new PullError('unreachable', `cannot pull from ${uri}: ${e.message}`, { kind: 'peer' }),
      ),
    );
    req.end();
  });
}

/** The boot URI's connection as the migration channel (this side: the channel's server). */
export async function pullChannel(uri: string, psk: Buffer, timeoutMs = 10_000): Promise<Channel> {
  return acceptChannel(await pullSocket(uri, timeoutMs), { psk, timeoutMs });
}
