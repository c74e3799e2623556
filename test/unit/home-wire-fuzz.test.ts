// Fuzz of the home session's decoders and of both relay ends (every byte a VM
// sends is hostile to home, and home's bytes are untrusted by the VM): random
// and mutated frames. A decoder may only refuse with an Error (which ends the
// session); the relays must never throw, never invent streams, and never hold
// more than their window.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import {
  checks,
  decodeRelay,
  encodeRelay,
  Home,
  parseHomeJson,
  type Open,
} from '../../src/guest/home-wire.js';
import { Relay, RELAY_WINDOW } from '../../src/guest/relay.js';
import { JobRelay } from '../../src/home/relay.js';
import { rng } from '../helpers.js';

const N = 20_000;
const TYPES = [Home.DATA, Home.ACK, Home.FIN, Home.RST];

function randomBytes(r: () => number, max: number): Buffer {
  return Buffer.from(Array.from({ length: Math.floor(r() * max) }, () => Math.floor(r() * 256)));
}

/** A valid-looking relay frame, then maybe mutated. */
function frame(r: () => number): Buffer {
  const sid = Math.floor(r() * 6);
  const seq = r() < 0.5 ? Math.floor(r() * 5000) : Math.floor(r() * 2 ** 48);
  const f = encodeRelay(sid, seq, randomBytes(r, 200));
  if (r() < 0.3) f[Math.floor(r() * f.length)] ^= 1 << Math.floor(r() * 8);
  return r() < 0.1 ? f.subarray(0, Math.floor(r() * f.length)) : f;
}

test('the session decoders refuse malformed input with an Error and nothing else', () => {
  const r = rng(7);
  const parsers = Object.entries(checks);
  const samples = [
    '{"job":"j","vm":"v","token":"t","maxSid":1,"streams":[{"sid":1,"recvNext":2,"sendAcked":3}]}',
    '{"token":"t","streams":[{"sid":1,"recvNext":2}]}',
    '{"sid":1,"port":80,"peer":"x"}',
    '{"id":1,"op":"migrate","to":"a:1","key":"00"}',
    '{"id":1,"ok":true}',
  ];
  for (let i = 0; i < N; i++) {
    const raw =
      r() < 0.5
        ? randomBytes(r, 300)
        : Buffer.from(samples[Math.floor(r() * samples.length)]).map((b) =>
            r() < 0.05 ? Math.floor(r() * 256) : b,
          );
    const [name, check] = parsers[Math.floor(r() * parsers.length)];
    try {
      parseHomeJson(Buffer.from(raw), name, check);
    } catch (e) {
      assert.ok(e instanceof Error && /home session/.test(e.message), String(e));
    }
    try {
      const f = decodeRelay(Buffer.from(raw));
      assert.ok(f.seq >= 0 && f.seq < 2 ** 48 && f.sid >= 0);
    } catch (e) {
      assert.ok(e instanceof Error && /relay frame/.test(e.message), String(e));
    }
  }
});

test('home survives a hostile VM: random frames on its session touch only that job’s streams', async () => {
  const home = new JobRelay('j', () => {});
  const addr = await home.publish('127.0.0.1', 0, 80);
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const link = { send: () => {} };
  home.attach(link, { job: 'j', vm: 'v', token: 't', maxSid: 0, streams: [] }, 't2');
  const socks = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
  for (const s of socks) s.on('error', () => {}).on('data', () => {});
  await new Promise((res) => setTimeout(res, 100));
  const r = rng(11);
  try {
    for (let i = 0; i < N; i++) {
      let f;
      try {
        f = decodeRelay(frame(r));
      } catch {
        continue;
      }
      home.onFrame(link, TYPES[Math.floor(r() * TYPES.length)], f);
    }
    assert.ok(home.open <= 2, `home holds ${home.open} streams for 2 clients`);
  } finally {
    for (const s of socks) s.destroy();
    home.close();
  }
});

test('the VM survives a hostile home: random OPENs and frames, bounded state', () => {
  const relay = new Relay(
    { home: 'x:1', job: 'j', key: '00'.repeat(32) },
    (port) => port === 80,
    () => {},
  );
  relay.attach({ send: () => {} }, { token: 't', streams: [] });
  const r = rng(13);
  for (let i = 0; i < N; i++) {
    if (r() < 0.05) {
      const o: Open = { sid: Math.floor(r() * 8), port: r() < 0.5 ? 80 : 81, peer: 'p' };
      relay.onOpen(o);
      continue;
    }
    let f;
    try {
      f = decodeRelay(frame(r));
    } catch {
      continue;
    }
    relay.onFrame(TYPES[Math.floor(r() * TYPES.length)], f);
  }
  assert.ok(relay.streams.size <= 8, `${relay.streams.size} streams from 8 ids`);
  for (const s of relay.streams.values())
    assert.ok(s.recvNext - s.consumed <= RELAY_WINDOW, 'no more unread bytes than the window');
});
