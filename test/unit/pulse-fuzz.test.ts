// The rendezvous server's decoder faces strangers: random and mutated datagrams
// (ROAM_FUZZ_COUNT, default 20,000) must never throw, never be taken for a
// release of an s nobody released, and the server must still serve a real
// subscription and release afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { decodeDatagram, encodeReply, encodeRequest } from '../../src/pulse/wire.js';
import { Rendezvous } from '../../src/pulse/rendezvous.js';
import { newEvent, release, Subscriber } from '../../src/pulse/client.js';

const COUNT = Math.min(Number(process.env.ROAM_FUZZ_COUNT ?? 20_000), 1_000_000);

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (randomInt(6)) {
    case 0:
      for (let i = randomInt(1, 4); i > 0 && out.length; i--)
        out[randomInt(out.length)] ^= 1 << randomInt(8);
      return out;
    case 1:
      return out.subarray(0, randomInt(out.length + 1));
    case 2:
      return Buffer.concat([out, randomBytes(randomInt(1, 600))]);
    case 3: {
      const at = randomInt(out.length + 1);
      return Buffer.concat([out.subarray(0, at), randomBytes(randomInt(1, 40)), out.subarray(at)]);
    }
    case 4:
      return randomBytes(randomInt(0, 700));
    default:
      return out;
  }
}

void test(`fuzz: ${COUNT} random and mutated datagrams at the rendezvous decoder`, async () => {
  const r = new Rendezvous({ maxPerAddress: 1 << 20 });
  const sent: Buffer[] = [];
  (r.socket as unknown as { send: (b: Buffer) => void }).send = (b: Buffer) => void sent.push(b);
  const v = randomBytes(32);
  const seeds = [
    encodeRequest({ kind: 'subscribe', id: 1, value: v }),
    encodeRequest({ kind: 'release', id: 2, value: v }),
    encodeRequest({ kind: 'event', id: 3, value: v }),
    encodeReply({ kind: 'subscribe', id: 4, value: v, lease: 30 }),
    encodeReply({ kind: 'subscribe', id: 4, value: v, secret: v }),
    encodeReply({ kind: 'release', id: 5, value: v, forwarded: 3 }),
  ];
  const from = { address: '192.0.2.7', port: 4000 };
  for (let i = 0; i < COUNT; i++) {
    const d = mutate(seeds[randomInt(seeds.length)]);
    const x = decodeDatagram(d); // must not throw
    if (x) assert.equal(x.value.length, 32);
    r.onDatagram(d, from);
  }
  // Every reply it sent is a well-formed Pulse reply, no larger than what asked.
  for (const b of sent) assert.ok(decodeDatagram(b) !== null && b.length <= 512);
  assert.equal(r.stats.received, COUNT);
  r.close();

  // A fresh server still works end to end.
  const srv = new Rendezvous();
  const addr = await srv.listen();
  const sub = new Subscriber({ renewMs: 100 });
  try {
    const e = newEvent();
    const got = new Promise<Buffer>((res) => sub.once('event', (_h: Buffer, s: Buffer) => res(s)));
    sub.watch(e.h, [addr]);
    await new Promise((res) => setTimeout(res, 50));
    await release(e.s, [addr]);
    assert.ok((await got).equals(e.s));
  } finally {
    sub.close();
    srv.close();
  }
});
