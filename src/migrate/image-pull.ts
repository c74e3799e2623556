// Boot images over HTTP (thesis 8.3.2 and 8.4): a boot image is a signed
// checkpoint file (a VM packed before it ran, `roam run --pack`, or any
// checkpoint), served at http://HOST:PORT/v1/image. A puller upgrades the
// connection to roam-image/1 and the bytes after the 101 are the migration
// channel (X25519 + AES-GCM keyed with the shared key), roles as in a pull
// migration: the server speaks first. So only a key holder gets the image, and
// what arrives is what was sent. The server sends the loader manifest (the
// puller checks it as a cstrap checks an upload's), the image's size and SHA-256,
// the image, and waits for the puller's verdict. The puller checks the pinned
// hash and the image's own MAC before it says IMAGE_OK. A server serves any
// number of copies (hypercube boot: every node that has the image serves it on).
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { acceptChannel, Channel, type Message } from './channel.js';
import { pullSocket, PullError } from './http-pull.js';
import { checkLoader, loaderManifest } from './loader.js';
import { json, Msg, parseJson } from './protocol.js';
import { formatHostPort, parseHostPort } from '../util/address.js';

export const IMAGE_PATH = '/v1/image';
const PROTOCOL = 'roam-image/1';
const CHUNK = 1 << 20;
/** Copies served at once; more pullers wait for a slot (a flood cannot exhaust memory). */
const MAX_SERVING = 32;
/**
 * Silence after which an image transfer gives up. Longer than a migration's 5 s:
 * a star boot behind a paced link on a loaded host (16 copies, 2 cores, load 10)
 * saw a puller hear nothing for 5.5 s while the source was alive.
 */
const SILENT_MS = 15_000;
/** The largest image a puller accepts unless told otherwise. */
export const MAX_IMAGE_BYTES = 4 * 1024 ** 3;

export interface Served {
  /** Who pulled (HOST:PORT of the puller's connection). */
  to: string;
  /** Bytes this server wrote for that copy (the channel's framing included). */
  bytes: number;
  ms: number;
}

export interface ImageServer {
  uri: string;
  readonly copies: number;
  readonly bytesSent: number;
  close(): void;
}

/** Serve `image` at http://listen/v1/image to key holders, any number of times, until closed. */
export function serveImage(o: {
  listen: string;
  psk: Buffer;
  image: Buffer;
  onServed?: (s: Served) => void;
  onRefused?: (from: string, why: string) => void;
  /** Bytes per second for all copies together (a source behind a slow link, as the thesis' WAN). */
  maxBandwidth?: number;
}): Promise<ImageServer> {
  const { host, port } = parseHostPort(o.listen, { allowPortZero: true });
  const info = json({
    bytes: o.image.length,
    sha256: createHash('sha256').update(o.image).digest('hex'),
  });
  let copies = 0;
  let bytesSent = 0;
  let active = 0;
  // One budget for every copy: the link is the source's, not each connection's.
  let nextFree = performance.now();
  const pace = async (bytes: number): Promise<void> => {
    if (!o.maxBandwidth) return;
    const now = performance.now();
    const at = Math.max(now, nextFree);
    nextFree = at + (bytes / o.maxBandwidth) * 1000;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  };
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { upgrade: PROTOCOL, 'content-type': 'text/plain' });
    res.end('a roam boot image: boot a cstrap from it (roam boot-hypercube --from URI)\n');
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const from = upgrade(req, socket, head, active >= MAX_SERVING);
    if (!from) return;
    const t0 = performance.now();
    active++;
    sendImage(socket, from, o.psk, info, o.image, pace)
      .then(
        () => {
          copies++;
          bytesSent += socket.bytesWritten;
          o.onServed?.({ to: from, bytes: socket.bytesWritten, ms: performance.now() - t0 });
        },
        (e: Error) => {
          bytesSent += socket.bytesWritten;
          socket.destroy();
          o.onRefused?.(from, e.message);
        },
      )
      .finally(() => active--);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(new PullError('listen', `cannot serve the image on ${o.listen}: ${e.message}`)),
    );
    server.listen(port, host, () => {
      const a = server.address() as net.AddressInfo;
      resolve({
        uri: `http://${formatHostPort(a.address, a.port)}${IMAGE_PATH}`,
        get copies() {
          return copies;
        },
        get bytesSent() {
          return bytesSent;
        },
        close: () => {
          server.close();
          server.closeAllConnections();
        },
      });
    });
  });
}

/** Answer an upgrade request: 101 and the puller's address, or a refusal and null. */
function upgrade(
  req: http.IncomingMessage,
  socket: net.Socket,
  head: Buffer,
  busy: boolean,
): string | null {
  if (req.url !== IMAGE_PATH || req.headers.upgrade !== PROTOCOL || busy) {
    socket.end(`HTTP/1.1 ${busy ? '503 Busy' : '404 Not Found'}\r\nConnection: close\r\n\r\n`);
    return null;
  }
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`,
  );
  if (head.length) socket.unshift(head);
  return formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
}

/** One copy: handshake, loader, size and hash, the image, then the puller's verdict. */
async function sendImage(
  socket: net.Socket,
  from: string,
  psk: Buffer,
  info: Buffer,
  image: Buffer,
  pace: (bytes: number) => Promise<void>,
): Promise<void> {
  const ch = await Channel.start(socket, 'client', { psk, timeoutMs: 10_000 }, from, true);
  let refusal: Message | null = null;
  try {
    ch.keepalive(1_000, SILENT_MS);
    await ch.send(Msg.LOADER, loaderManifest());
    await expect(ch, Msg.LOADER_OK, 'the loader');
    await ch.send(Msg.IMAGE_INFO, info);
    // The puller's verdict may come early (a REFUSE after IMAGE_INFO): stop sending then.
    let answered = false;
    const verdict = ch.next().then((m) => {
      answered = true;
      // A send under way when the puller refused fails with the closed link: its reason is the one to tell.
      if (m?.type === Msg.REFUSE) refusal = m;
      return m;
    });
    verdict.catch(() => undefined); // awaited below
    for (let at = 0; at < image.length && !answered; at += CHUNK) {
      const chunk = image.subarray(at, at + CHUNK);
      await pace(chunk.length);
      await ch.send(Msg.IMAGE, chunk);
      // A turn of the event loop per chunk: a send that the channel buffers resolves at once,
      // and without this one copy would encrypt the whole image while no other puller,
      // keepalive or HTTP request is served (seen: a 16-copy star timing out).
      await new Promise((r) => setImmediate(r));
    }
    if (!answered) await ch.send(Msg.IMAGE_END);
    verdictOf(await verdict);
    await ch.end();
  } catch (e) {
    ch.destroy();
    if (refusal) verdictOf(refusal);
    throw e;
  }
}

async function expect(ch: Channel, type: Msg, what: string): Promise<Buffer> {
  return verdictOf(await ch.next(30_000), type, what);
}

function verdictOf(m: Message | null, type = Msg.IMAGE_OK, what = 'the image'): Buffer {
  if (m?.type === type) return m.payload;
  if (m?.type === Msg.REFUSE)
    throw new PullError(
      'refused',
      `refused ${what}: ${parseJson<{ reason?: string }>(m.payload, 'REFUSE').reason ?? '?'}`,
    );
  throw new PullError(
    'protocol',
    `expected ${Msg[type]} after ${what}, got ${m ? m.type : 'the end'}`,
    {
      kind: 'peer',
    },
  );
}

export interface PullImageOptions {
  psk: Buffer;
  /** Refuse any other loader (a boot token pins it). */
  loaderHash?: string;
  features?: readonly string[];
  /** Refuse an image whose SHA-256 is not this. */
  sha256?: string;
  maxBytes?: number;
  /** Check the image itself (its MAC) before saying IMAGE_OK; throwing refuses it. */
  verify?: (image: Buffer) => Promise<void>;
  idleTimeoutMs?: number;
}

/** Pull a boot image from `uri`; resolves once it is whole and verified (hash, MAC). */
export async function pullImage(
  uri: string,
  o: PullImageOptions,
): Promise<{ image: Buffer; sha256: string }> {
  const ch = await acceptChannel(await pullSocket(uri, 10_000, PROTOCOL), {
    psk: o.psk,
    timeoutMs: 10_000,
  });
  const idle = o.idleTimeoutMs ?? 30_000;
  try {
    ch.keepalive(1_000, SILENT_MS);
    const loader = await ch.next(idle);
    if (loader?.type !== Msg.LOADER) throw new PullError('protocol', `${uri} sent no loader`);
    const why = checkLoader(loader.payload, o.loaderHash, o.features);
    if (why) throw new PullError('loader', why);
    await ch.send(Msg.LOADER_OK);
    const head = await ch.next(idle);
    if (head?.type !== Msg.IMAGE_INFO) throw new PullError('protocol', `${uri} sent no IMAGE_INFO`);
    const info = parseJson<{ bytes?: unknown; sha256?: unknown }>(head.payload, 'IMAGE_INFO');
    const max = o.maxBytes ?? MAX_IMAGE_BYTES;
    if (typeof info.bytes !== 'number' || !Number.isSafeInteger(info.bytes) || info.bytes < 0)
      throw new PullError('protocol', `${uri} sent a malformed IMAGE_INFO`);
    if (info.bytes > max)
      throw new PullError('too-large', `the image is ${info.bytes} bytes, more than ${max}`);
    if (o.sha256 && info.sha256 !== o.sha256)
      throw new PullError(
        'wrong-image',
        `${uri} serves another image than the pinned ${o.sha256.slice(0, 16)}…`,
      );
    const { image, sha256 } = await receiveBytes(ch, info.bytes, idle, uri);
    if (sha256 !== info.sha256 || (o.sha256 && sha256 !== o.sha256))
      throw new PullError(
        'wrong-image',
        `the image from ${uri} does not hash to what was announced`,
      );
    await o.verify?.(image);
    await ch.send(Msg.IMAGE_OK);
    await ch.end();
    return { image, sha256 };
  } catch (e) {
    const reason = (e as Error).message;
    // Told, then a moment before the reset: a reset at once would drop the REFUSE unread at the server.
    await ch.send(Msg.REFUSE, json({ reason })).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    ch.destroy();
    throw e;
  }
}

async function receiveBytes(
  ch: Channel,
  bytes: number,
  idle: number,
  uri: string,
): Promise<{ image: Buffer; sha256: string }> {
  const image = Buffer.allocUnsafe(bytes);
  // Hashed as it arrives: no second pass over the image (a long synchronous one starves keepalives).
  const hash = createHash('sha256');
  let at = 0;
  for (;;) {
    const m = await ch.next(idle);
    if (!m) throw new PullError('truncated', `${uri} closed the connection before the image's end`);
    if (m.type === Msg.IMAGE_END) break;
    if (m.type !== Msg.IMAGE || at + m.payload.length > bytes)
      throw new PullError('protocol', `${uri} sent more than the image it announced`);
    m.payload.copy(image, at);
    hash.update(m.payload);
    at += m.payload.length;
  }
  if (at !== bytes)
    throw new PullError('truncated', `${uri} sent ${at} of the image's ${bytes} bytes`);
  return { image, sha256: hash.digest('hex') };
}
