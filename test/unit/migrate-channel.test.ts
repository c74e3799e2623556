// The migration channel over real TCP sockets on 127.0.0.1: round trips, bulk
// transfer with back-pressure, key mismatch, a foreign peer, and a
// man-in-the-middle proxy that modifies, replays, drops or cuts whole frames.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, test } from 'node:test';
import {
  ChannelError,
  acceptChannel,
  connectChannel,
  type Channel,
  type ChannelErrorCode,
  type Message,
} from '../../src/migrate/channel.js';
import { parseHostPort } from '../../src/util/address.js';

const PSK = randomBytes(32);
const MiB = 1024 * 1024;
const HELLO = 72;
/** Per-test limit, so that a regression fails instead of hanging. */
const T = { timeout: 15_000 };

/** Everything a test opened, closed at the end even when an assertion failed. */
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.splice(0)) c();
});

async function listen(onSocket: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

/** A migration server on 127.0.0.1; `channel` resolves (or rejects) with the first accepted channel. */
async function channelServer(psk = PSK): Promise<{ port: number; channel: Promise<Channel> }> {
  let resolve!: (c: Channel) => void, reject!: (e: unknown) => void;
  const channel = new Promise<Channel>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  channel.catch(() => {}); // observed by the tests that expect a failure
  const port = await listen((s) => void acceptChannel(s, { psk }).then(resolve, reject));
  return { port, channel };
}

async function pair(psk = PSK): Promise<{ client: Channel; server: Channel }> {
  const { port, channel } = await channelServer(psk);
  const client = await connectChannel('127.0.0.1', port, { psk });
  const server = await channel;
  cleanups.push(() => {
    client.destroy();
    server.destroy();
  });
  return { client, server };
}

function isChannelError(code: ChannelErrorCode, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ChannelError, `expected a ChannelError, got ${String(err)}`);
    assert.equal(err.code, code, `code of: ${err.message}`);
    assert.match(err.message, message);
    return true;
  };
}

/** Reads until the stream ends or fails; returns what arrived and the failure. */
async function drain(ch: Channel): Promise<{ got: Message[]; err: unknown }> {
  const got: Message[] = [];
  try {
    // A timeout rather than a hang when a frame that should have failed slips through.
    for (let m; (m = await ch.next(5000));) got.push(m);
    return { got, err: undefined };
  } catch (err) {
    return { got, err };
  }
}

type Direction = 'c2s' | 's2c';
/**
 * Decides what the proxy forwards for one whole unit: the hello (index -1) or
 * frame `index` (0 is FINISHED). Returns the buffers to forward, or 'cut' to
 * forward half of it and then close the connection towards the receiver.
 */
type Tamper = (dir: Direction, index: number, unit: Buffer) => Buffer[] | 'cut';

/** A TCP proxy in front of `target` that parses hellos and frames, so that it can act on whole frames. */
async function mitmProxy(target: number, tamper: Tamper): Promise<number> {
  return listen((down) => {
    const up = net.connect({ port: target, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => up.destroy());
    const relay = (dir: Direction, from: net.Socket, to: net.Socket) => {
      let buf = Buffer.alloc(0);
      let index = -1;
      let cut = false;
      from.on('data', (chunk: Buffer) => {
        if (cut) return;
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          const size = index < 0 ? HELLO : buf.length >= 4 ? 4 + buf.readUInt32BE(0) : Infinity;
          if (buf.length < size) break;
          const unit = buf.subarray(0, size);
          buf = buf.subarray(size);
          const out = tamper(dir, index++, Buffer.from(unit));
          if (out === 'cut') {
            cut = true;
            to.end(unit.subarray(0, Math.floor(unit.length / 2)));
            return;
          }
          for (const b of out) to.write(b);
        }
      });
      from.on('end', () => {
        if (!cut) to.end();
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        if (!to.writableEnded) to.destroy();
      });
    };
    relay('c2s', down, up);
    relay('s2c', up, down);
  });
}

/** Client ↔ proxy ↔ server; the client sends messages 1..5 ("message i"). */
async function throughProxy(tamper: Tamper, psk = PSK) {
  const { port, channel } = await channelServer(psk);
  const proxy = await mitmProxy(port, tamper);
  const client = connectChannel('127.0.0.1', proxy, { psk });
  client.catch(() => {});
  cleanups.push(() => {
    client.then(
      (c) => c.destroy(),
      () => {},
    );
    channel.then(
      (c) => c.destroy(),
      () => {},
    );
  });
  return { client, server: channel };
}

const pass: Tamper = (_d, _i, unit) => [unit];
const flipAt = (unit: Buffer, at: number) => {
  unit[at] ^= 0x40;
  return unit;
};

async function sendFive(ch: Channel): Promise<void> {
  for (let i = 1; i <= 5; i++) await ch.send(1, Buffer.from(`message ${i}`));
}

test(
  'round trip: many messages both ways, sizes 0 B to 16 MiB, in order, byte counters agree',
  T,
  async () => {
    const { client, server } = await pair();
    const pool = randomBytes(16 * MiB + 4096);
    const sizes = [0, 1, 4096, MiB, 16 * MiB];
    const plan: { type: number; at: number; size: number }[] = [];
    for (let round = 0; round < 3; round++) {
      for (const size of sizes)
        plan.push({ type: 1 + (plan.length % 255), at: (plan.length * 257) % 4096, size });
    }
    for (let i = 0; i < 40; i++) plan.push({ type: 200, at: i, size: i % 7 });
    const payload = (p: (typeof plan)[number]) => pool.subarray(p.at, p.at + p.size);

    async function sendAll(ch: Channel) {
      for (const p of plan) await ch.send(p.type, payload(p));
      await ch.end();
    }
    async function receiveAll(ch: Channel) {
      const { got, err } = await drain(ch);
      assert.equal(err, undefined);
      assert.equal(got.length, plan.length);
      got.forEach((m, i) => {
        assert.equal(m.type, plan[i].type, `type of message ${i}`);
        assert.ok(
          m.payload.equals(payload(plan[i])),
          `payload of message ${i} (${plan[i].size} bytes)`,
        );
      });
    }
    await Promise.all([sendAll(client), sendAll(server), receiveAll(client), receiveAll(server)]);

    // hello + FINISHED (4 + 1 + 16) + every frame (4 + 1 + payload + 16)
    const expected = HELLO + 21 + plan.reduce((n, p) => n + 21 + p.size, 0);
    assert.equal(client.bytesSent, expected);
    assert.equal(server.bytesSent, expected);
    assert.equal(server.bytesReceived, client.bytesSent);
    assert.equal(client.bytesReceived, server.bytesSent);
    assert.match(client.remote, /^127\.0\.0\.1:\d+$/);
    assert.match(server.remote, /^(::ffff:)?127\.0\.0\.1:\d+$|^\[::ffff:127\.0\.0\.1\]:\d+$/);
    assert.equal(await client.next(), null, 'the stream stays ended');
  },
);

test('200 MiB one way in 1 MiB messages (back-pressure, linear decoding)', T, async (t) => {
  const { client, server } = await pair();
  const block = randomBytes(MiB);
  const count = 200;
  const t0 = Date.now();
  const sending = (async () => {
    for (let i = 0; i < count; i++) {
      block.writeUInt32BE(i, 0);
      await client.send(7, block);
      // Back-pressure: send() waits for the socket, so far less than the whole transfer is ever buffered.
      assert.ok(
        client.socket.writableLength <= 2 * MiB,
        `socket buffer holds ${client.socket.writableLength} bytes`,
      );
    }
    await client.end();
  })();
  let n = 0;
  let bytes = 0;
  for await (const m of server) {
    assert.equal(m.type, 7);
    assert.equal(m.payload.length, MiB);
    assert.equal(m.payload.readUInt32BE(0), n, 'messages arrive in order');
    n++;
    bytes += m.payload.length;
  }
  await sending;
  const ms = Date.now() - t0;
  assert.equal(n, count);
  assert.equal(bytes, count * MiB);
  assert.equal(server.bytesReceived, HELLO + 21 + count * (21 + MiB));
  t.diagnostic(`200 MiB in ${ms} ms (${Math.round((200 * 1000) / Math.max(ms, 1))} MiB/s)`);
});

test('a consumer that does not read holds the sender back (receive back-pressure)', T, async () => {
  const { client, server } = await pair();
  const block = randomBytes(MiB);
  const count = 150;
  let sent = 0;
  const sending = (async () => {
    for (let i = 0; i < count; i++) {
      await client.send(9, block);
      sent++;
    }
    await client.end();
  })();
  // Wait until the sender has stalled: the receiver stops reading at its 32 MiB queue limit.
  let last = -1;
  while (sent !== last) {
    last = sent;
    await new Promise((r) => setTimeout(r, 150));
  }
  // 32 MiB queued by the receiver, plus what the kernel buffers hold.
  assert.ok(sent < 100, `the sender got ${sent} MiB ahead of a consumer that read nothing`);
  let n = 0;
  for await (const m of server) {
    assert.equal(m.payload.length, MiB);
    n++;
  }
  await sending;
  assert.equal(n, count);
});

test('clean end, half-close, next() timeout and argument checks', T, async () => {
  const { client, server } = await pair();
  await assert.rejects(
    server.next(50),
    isChannelError('timeout', /no message from .* within 50 ms/),
  );
  await client.send(3, Buffer.from('after a timeout'));
  const m = await server.next(1000);
  assert.equal(m?.type, 3);
  assert.equal(m?.payload.toString(), 'after a timeout');

  await client.end();
  assert.equal(await server.next(), null, 'a clean end between frames ends the stream');
  // Half-close: the server can still answer after the client ended its side.
  await server.send(4, Buffer.from('reply'));
  assert.equal((await client.next())?.payload.toString(), 'reply');
  await server.end();
  assert.equal(await client.next(), null);
  await assert.rejects(client.send(1), isChannelError('protocol', /send after end/));

  const { client: c2 } = await pair();
  await assert.rejects(c2.send(0), /message type must be an integer 1\.\.254/);
  await assert.rejects(c2.send(256), RangeError);
  await assert.rejects(c2.send(1, Buffer.alloc(16 * MiB + 1)), /message too large/);
  await assert.rejects(
    connectChannel('127.0.0.1', 1, { psk: Buffer.alloc(16) }),
    /migration key must be 32 bytes, got 16 bytes/,
  );
});

test('wrong pre-shared key: both sides fail the handshake', T, async () => {
  const { port, channel } = await channelServer(randomBytes(32));
  const client = connectChannel('127.0.0.1', port, { psk: PSK });
  const [c, s] = await Promise.allSettled([client, channel]);
  const keyMismatch = isChannelError(
    'handshake',
    /migration handshake with .* failed: the peer does not hold the same key \(check --key \/ \$ROAM_HOME\/checkpoint\.key\)/,
  );
  assert.equal(c.status, 'rejected');
  assert.equal(s.status, 'rejected');
  keyMismatch(c.reason);
  keyMismatch(s.reason);
});

test('a modified hello (MITM) fails the handshake on both sides', T, async () => {
  const { client, server } = await throughProxy((dir, i, unit) => [
    dir === 'c2s' && i === -1 ? flipAt(unit, 50) : unit,
  ]);
  const [c, s] = await Promise.allSettled([client, server]);
  for (const r of [c, s]) {
    assert.equal(r.status, 'rejected');
    isChannelError('handshake', /does not hold the same key/)(r.reason);
  }
});

test('MITM flips one byte of a frame: the receiver fails "tampered" at that frame', T, async () => {
  const { client, server } = await throughProxy((dir, i, unit) => [
    dir === 'c2s' && i === 3 ? flipAt(unit, 8) : unit,
  ]);
  const c = await client;
  const s = await server;
  await sendFive(c);
  const { got, err } = await drain(s);
  assert.deepEqual(
    got.map((m) => m.payload.toString()),
    ['message 1', 'message 2'],
  );
  isChannelError(
    'tampered',
    /migration stream from .* failed authentication \(tampered, replayed or corrupted\) at frame 3$/,
  )(err);
  assert.ok(s.socket.destroyed, 'the socket is destroyed');
  await assert.rejects(s.send(1, Buffer.from('x')), isChannelError('tampered', /frame 3/));
});

test('MITM replays a whole frame: "tampered"', T, async () => {
  // Server → client this time.
  const { client, server } = await throughProxy((dir, i, unit) =>
    dir === 's2c' && i === 2 ? [unit, unit] : [unit],
  );
  const c = await client;
  const s = await server;
  await sendFive(s);
  const { got, err } = await drain(c);
  assert.deepEqual(
    got.map((m) => m.payload.toString()),
    ['message 1', 'message 2'],
  );
  isChannelError('tampered', /failed authentication .* at frame 3$/)(err);
});

test('MITM drops a whole frame: "tampered"', T, async () => {
  const { client, server } = await throughProxy((dir, i, unit) =>
    dir === 'c2s' && i === 2 ? [] : [unit],
  );
  const c = await client;
  const s = await server;
  await sendFive(c);
  const { got, err } = await drain(s);
  assert.deepEqual(
    got.map((m) => m.payload.toString()),
    ['message 1'],
  );
  isChannelError('tampered', /failed authentication .* at frame 2$/)(err);
});

test('MITM swaps two frames: "tampered"', T, async () => {
  let held: Buffer | undefined;
  const { client, server } = await throughProxy((dir, i, unit) => {
    if (dir !== 'c2s') return [unit];
    if (i === 2) {
      held = unit;
      return [];
    }
    if (i === 3) return [unit, held!];
    return [unit];
  });
  const c = await client;
  const s = await server;
  await sendFive(c);
  const { got, err } = await drain(s);
  assert.equal(got.length, 1);
  isChannelError('tampered', /at frame 2$/)(err);
});

test('MITM cuts the connection in the middle of a frame: "closed"', T, async () => {
  const { client, server } = await throughProxy((dir, i, unit) =>
    dir === 'c2s' && i === 3 ? 'cut' : [unit],
  );
  const c = await client;
  const s = await server;
  await sendFive(c);
  const { got, err } = await drain(s);
  assert.equal(got.length, 2);
  isChannelError(
    'closed',
    /peer closed the connection in the middle of a frame \(frame 3: 15 of 30 bytes\)/,
  )(err);
});

test('a frame length above 16 MiB + 17 is refused before reading it', T, async () => {
  const { client, server } = await throughProxy((dir, i, unit) => {
    if (dir === 'c2s' && i === 2) unit.writeUInt32BE(16 * MiB + 18, 0);
    return [unit];
  });
  const c = await client;
  const s = await server;
  await sendFive(c);
  const { got, err } = await drain(s);
  assert.equal(got.length, 1);
  isChannelError('protocol', /frame too large: frame 2 claims 16777234 bytes/)(err);
});

test('the handshake through an honest proxy works (the proxy itself is sound)', T, async () => {
  const { client, server } = await throughProxy(pass);
  const c = await client;
  const s = await server;
  await sendFive(c);
  await c.end();
  const { got, err } = await drain(s);
  assert.equal(err, undefined);
  assert.equal(got.length, 5);
});

test('a non-roam peer is refused with "not a roam migration peer"', T, async () => {
  // An HTTP client talking to a migration server.
  const { port, channel } = await channelServer();
  const http = net.connect(port, '127.0.0.1', () =>
    http.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n'),
  );
  http.on('error', () => {});
  cleanups.push(() => http.destroy());
  await assert.rejects(
    channel,
    isChannelError(
      'handshake',
      /not a roam migration peer \(it sent "GET \/ HTTP\/1\.1\.\." instead/,
    ),
  );

  // A migration client talking to an HTTP server.
  const web = await listen((s) =>
    s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')),
  );
  await assert.rejects(
    connectChannel('127.0.0.1', web, { psk: PSK }),
    isChannelError('handshake', /not a roam migration peer/),
  );
});

test('a peer that closes or stalls during the handshake; an unreachable address', T, async () => {
  const closer = await listen((s) =>
    s.once('data', () => s.end(Buffer.from('ROAMMIG1 and then nothing'))),
  );
  await assert.rejects(
    connectChannel('127.0.0.1', closer, { psk: PSK }),
    isChannelError('closed', /closed the connection during the handshake/),
  );

  const staller = await listen(() => {});
  await assert.rejects(
    connectChannel('127.0.0.1', staller, { psk: PSK, timeoutMs: 100 }),
    isChannelError('timeout', /handshake with 127\.0\.0\.1:\d+ timed out after 100 ms/),
  );

  const free = await listen(() => {});
  cleanups.pop()!(); // close it again: nothing listens on `free` now
  await assert.rejects(
    connectChannel('127.0.0.1', free, { psk: PSK }),
    isChannelError(
      'closed',
      new RegExp(`^cannot reach 127\\.0\\.0\\.1:${free}: connection refused$`),
    ),
  );
});

test('parseHostPort', T, () => {
  assert.deepEqual(parseHostPort('example.org:7000'), { host: 'example.org', port: 7000 });
  assert.deepEqual(parseHostPort('10.0.0.2:65535'), { host: '10.0.0.2', port: 65535 });
  assert.deepEqual(parseHostPort('[::1]:9000'), { host: '::1', port: 9000 });
  assert.deepEqual(parseHostPort('[fe80::1:2]:1'), { host: 'fe80::1:2', port: 1 });
  assert.deepEqual(parseHostPort('4242'), { host: '127.0.0.1', port: 4242 });
  assert.deepEqual(parseHostPort(' host:80 '), { host: 'host', port: 80 });
  assert.deepEqual(parseHostPort('0.0.0.0:0', { allowPortZero: true }), {
    host: '0.0.0.0',
    port: 0,
  });
  assert.throws(() => parseHostPort(''), /empty address/);
  assert.throws(() => parseHostPort('host'), /missing ":PORT"/);
  assert.throws(() => parseHostPort(':80'), /missing host/);
  assert.throws(() => parseHostPort('host:'), /port "" is not a number/);
  assert.throws(() => parseHostPort('host:http'), /port "http" is not a number/);
  assert.throws(() => parseHostPort('host:65536'), /out of range \(1-65535\)/);
  assert.throws(() => parseHostPort('host:0'), /out of range/);
  assert.throws(() => parseHostPort('70000'), /out of range/);
  assert.throws(() => parseHostPort('::1:9000'), /needs brackets, as in \[::1\]:9000/);
  assert.throws(() => parseHostPort('[::1]'), /missing ":PORT"/);
  assert.throws(() => parseHostPort('[::1:9000'), /unbalanced/);
  assert.throws(() => parseHostPort('[nope]:80'), /not an IPv6 address/);
});

test('keepalives: an idle channel stays up; a silent peer fails it with "timeout"', T, async () => {
  const { client, server } = await pair();
  client.keepalive(20, 200);
  server.keepalive(20, 200);
  await new Promise((r) => setTimeout(r, 500));
  // Both still open after 2.5 idle windows: keepalives are not delivered as messages.
  await server.send(1, Buffer.from('still here'));
  const m = await client.next(1000);
  assert.equal(m?.payload.toString(), 'still here');
  // The peer falls silent, its socket open (a frozen process or a silent link).
  server.keepalive(1e8, 1e9);
  await assert.rejects(client.next(), isChannelError('timeout', /nothing from .* for \d+ ms/));
});
