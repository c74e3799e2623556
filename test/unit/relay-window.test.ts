// Flow control from the VM to a client: home acknowledges what the client's
// socket has taken, the VM sends no further than a window past home's last
// acknowledgement, so a client that does not read holds the VM back and home
// buffers at most a window for it; a VM that sends past its window gets the
// stream reset instead of home's memory. Home's end (src/home/relay.ts) with a
// real loopback client, the VM's (src/guest/relay.ts), an in-memory session.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import {
  decodeRelay,
  encodeRelay,
  Home,
  RELAY_WINDOW,
  type Open,
} from '../../src/guest/home-wire.js';
import { Relay, type RelayStream } from '../../src/guest/relay.js';
import { JobRelay, type SessionLink } from '../../src/home/relay.js';
import { until } from '../helpers.js';

const TOTAL = 8 << 20;
const pattern = (at: number, n: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (at + i) % 251;
  return b;
};

async function world() {
  const home = new JobRelay('j0', () => {});
  const addr = await home.publish('127.0.0.1', 0, 7000);
  const streams: RelayStream[] = [];
  const vm = new Relay(
    { home: 'x:1', job: 'j0', key: '00'.repeat(32) },
    (_port, s) => (streams.push(s), true),
    () => {},
  );
  /** What went over the wire from the VM: each DATA's end, against home's last ACK then. */
  const wire = { lastAck: 0, furthest: 0, overWindow: 0, rsts: 0 };
  const toVm: SessionLink = {
    send: (type, payload) =>
      setImmediate(() => {
        if (type === Home.OPEN) return vm.onOpen(JSON.parse(payload.toString()) as Open);
        const f = decodeRelay(payload);
        if (type === Home.ACK) wire.lastAck = Math.max(wire.lastAck, f.seq);
        if (type === Home.RST) wire.rsts++;
        vm.onFrame(type, f);
      }),
  };
  const toHome = {
    send: (type: number, payload: Buffer) => {
      const f = decodeRelay(payload);
      if (type === Home.DATA) {
        wire.furthest = Math.max(wire.furthest, f.seq + f.data.length);
        if (wire.furthest > wire.lastAck + RELAY_WINDOW) wire.overWindow++;
      }
      setImmediate(() => home.onFrame(toVm, type, f));
    },
  };
  vm.attach(toHome, home.attach(toVm, vm.hello('vm'), 't1'));
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const client = net.connect(port, '127.0.0.1');
  client.pause();
  await until(() => streams.length === 1, 'the stream opened in the VM');
  /** Home's client socket (private to JobRelay; read here to check its buffer). */
  const homeSocket = (): net.Socket | undefined =>
    [...(home as unknown as { streams: Map<number, { socket: net.Socket }> }).streams.values()][0]
      ?.socket;
  return { home, vm, s: streams[0], client, wire, toVm, homeSocket };
}

test('a client that does not read holds the VM back: home buffers at most a window', async () => {
  const w = await world();
  try {
    for (let at = 0; at < TOTAL; at += 65536) w.s.write(pattern(at, 65536));
    let maxBuffered = 0;
    const sample = setInterval(() => {
      maxBuffered = Math.max(maxBuffered, w.homeSocket()?.writableLength ?? 0);
    }, 5);
    // Let it settle with the client not reading: the kernel's buffers fill, then nothing moves.
    for (let last = -1; last !== w.wire.furthest;) {
      last = w.wire.furthest;
      await new Promise((r) => setTimeout(r, 300));
    }
    clearInterval(sample);
    assert.ok(w.wire.furthest < TOTAL, `all ${TOTAL} bytes went to a client that reads nothing`);
    assert.ok(maxBuffered <= RELAY_WINDOW, `home buffered ${maxBuffered} bytes for the client`);
    assert.equal(w.wire.overWindow, 0, 'the VM sent past its window');
    // The client reads now: it gets every byte, in order, and the VM's queue empties.
    const got: Buffer[] = [];
    let n = 0;
    w.client.on('data', (d: Buffer) => (got.push(d), (n += d.length)));
    w.client.resume();
    await until(() => n >= TOTAL, 'every byte at the client', 60_000);
    assert.ok(Buffer.concat(got).equals(pattern(0, TOTAL)), 'the bytes, in order');
    await until(() => w.s.sendAcked === TOTAL, 'home acknowledged everything');
  } finally {
    w.client.destroy();
    w.home.close();
  }
});

test('a VM that sends past its window gets the stream reset, not home buffering it', async () => {
  const w = await world();
  try {
    const closed = new Promise((r) => w.client.once('close', r));
    w.client.resume(); // (a paused socket never sees its end)
    // A hostile VM: DATA straight past the window, ignoring every acknowledgement.
    for (let at = 0; at < 4 * RELAY_WINDOW; at += 16384)
      w.home.onFrame(w.toVm, Home.DATA, decodeRelay(encodeRelay(1, at, pattern(at, 16384))));
    await closed;
    await until(() => w.wire.rsts >= 1, 'RST to the VM');
    assert.ok((w.homeSocket()?.writableLength ?? 0) === 0, 'nothing kept for the stream');
  } finally {
    w.client.destroy();
    w.home.close();
  }
});
