// Pulse datagrams: what goes out decodes to what went in, a forged event does
// not verify, and a rendezvous server forwards s to H(s)'s subscribers only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  decodeDatagram,
  encodeReply,
  encodeRequest,
  H,
  MAX_DATAGRAM,
} from '../../src/pulse/wire.js';
import { Rendezvous } from '../../src/pulse/rendezvous.js';
import { newEvent, release, Subscriber } from '../../src/pulse/client.js';

const once = <T>(sub: Subscriber, ms = 5000) =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no event')), ms);
    sub.once('event', (h: Buffer, s: Buffer) => {
      clearTimeout(t);
      resolve({ h, s } as T);
    });
  });

void test('requests and replies round-trip and stay small', () => {
  const v = randomBytes(32);
  for (const kind of ['subscribe', 'release', 'event'] as const) {
    const buf = encodeRequest({ kind, id: 77, value: v });
    assert.ok(buf.length <= MAX_DATAGRAM);
    assert.deepEqual(decodeDatagram(buf), { reply: false, kind, id: 77, value: v });
  }
  assert.deepEqual(decodeDatagram(encodeReply({ kind: 'subscribe', id: 1, value: v, lease: 30 })), {
    reply: true,
    kind: 'subscribe',
    id: 1,
    value: v,
    lease: 30,
  });
  const s = randomBytes(32);
  assert.deepEqual(decodeDatagram(encodeReply({ kind: 'subscribe', id: 2, value: v, secret: s })), {
    reply: true,
    kind: 'subscribe',
    id: 2,
    value: v,
    secret: s,
  });
  assert.deepEqual(
    decodeDatagram(encodeReply({ kind: 'release', id: 3, value: v, forwarded: 9 })),
    {
      reply: true,
      kind: 'release',
      id: 3,
      value: v,
      forwarded: 9,
    },
  );
});

void test('garbage, trailing bytes and foreign DNS queries decode to null', () => {
  const ok = encodeRequest({ kind: 'subscribe', id: 5, value: randomBytes(32) });
  assert.equal(decodeDatagram(Buffer.concat([ok, Buffer.from([0])])), null);
  assert.equal(decodeDatagram(ok.subarray(0, ok.length - 1)), null);
  assert.equal(decodeDatagram(Buffer.alloc(0)), null);
  assert.equal(decodeDatagram(randomBytes(600)), null);
  // An ordinary DNS query is not a Pulse message.
  const foreign = Buffer.from(ok.toString('latin1').replace('pulse', 'other'), 'latin1');
  assert.equal(decodeDatagram(foreign), null);
});

void test('a subscriber hears the release once, from two rendezvous servers, and verifies it', async () => {
  const r1 = new Rendezvous();
  const r2 = new Rendezvous();
  const servers = [await r1.listen(), await r2.listen()];
  const sub = new Subscriber({ renewMs: 60_000 });
  try {
    const e = newEvent();
    sub.watch(e.h, servers);
    // Wait for both subscriptions to be held.
    for (let i = 0; i < 100 && r1.stats.subscriptions + r2.stats.subscriptions < 2; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(r1.stats.subscriptions + r2.stats.subscriptions, 2);
    const got = once<{ h: Buffer; s: Buffer }>(sub);
    const counts = await release(e.s, servers);
    assert.deepEqual(Object.values(counts), [1, 1]);
    const ev = await got;
    assert.ok(ev.s.equals(e.s) && ev.h.equals(e.h) && H(ev.s).equals(e.h));
    await new Promise((r) => setTimeout(r, 50)); // the second copy arrives and is dropped
    assert.equal(sub.stats.events, 1);
    assert.equal(r1.stats.subscriptions + r2.stats.subscriptions, 0);
  } finally {
    sub.close();
    r1.close();
    r2.close();
  }
});

void test('a forged event (s that does not hash to H) is ignored', async () => {
  const r = new Rendezvous();
  const srv = await r.listen();
  const sub = new Subscriber({ renewMs: 60_000 });
  try {
    const e = newEvent();
    sub.watch(e.h, [srv]);
    await new Promise((res) => setTimeout(res, 50));
    // Anyone may release anything, but only the real s reaches a subscriber of H(s).
    assert.deepEqual(Object.values(await release(randomBytes(32), [srv])), [0]);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(sub.stats.events, 0);
    assert.equal(sub.watching, 1);
  } finally {
    sub.close();
    r.close();
  }
});

void test('a lost event is recovered at the next renewal; a late subscriber learns s at once', async () => {
  const r = new Rendezvous();
  const srv = await r.listen();
  // Every datagram to this subscriber is lost until we say otherwise.
  const sub = new Subscriber({ renewMs: 200, lossRate: 1 });
  try {
    const e = newEvent();
    sub.watch(e.h, [srv]);
    await new Promise((res) => setTimeout(res, 50));
    await release(e.s, [srv]);
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(sub.stats.events, 0);
    (sub as unknown as { o: { lossRate: number } }).o.lossRate = 0;
    const ev = await once<{ s: Buffer }>(sub);
    assert.ok(ev.s.equals(e.s));
    const late = new Subscriber({ renewMs: 60_000 });
    try {
      const got = once<{ s: Buffer }>(late);
      late.watch(e.h, [srv]);
      assert.ok((await got).s.equals(e.s));
    } finally {
      late.close();
    }
  } finally {
    sub.close();
    r.close();
  }
});

void test('subscriptions are bounded per address and expire', () => {
  const r = new Rendezvous({ maxPerAddress: 3, leaseS: 1 });
  const from = { address: '192.0.2.1', port: 1000 };
  (r.socket as unknown as { send: () => void }).send = () => undefined; // no replies to a fake address
  for (let i = 0; i < 5; i++)
    r.onDatagram(encodeRequest({ kind: 'subscribe', id: i, value: randomBytes(32) }), from);
  assert.equal(r.stats.subscriptions, 3);
  assert.equal(r.stats.refused, 2);
  r.sweep(Date.now() + 2000);
  assert.equal(r.stats.subscriptions, 0);
});
