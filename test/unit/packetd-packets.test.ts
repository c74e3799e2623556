// Datagram-level refusals: oversize, truncated, malformed, unknown types, and
// replies, which the daemon never answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { decodeMessage, encodeMessage, MAX_DATAGRAM } from '../../src/host/protocol.js';
import { daemon, mint, refusal } from '../packetd-fixtures.js';

// Raw datagrams, so that the client library's own checks do not get in the way.
async function raw(addr: string, datagrams: Buffer[], expect: number) {
  const [host, port] = addr.split(':');
  const s = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  s.on('message', (b) => got.push(b));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  for (const d of datagrams) s.send(d, Number(port), host);
  const deadline = Date.now() + 1500;
  while (got.length < expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100)); // catch any reply that should not be there
  s.close();
  return got.map((b) => {
    const m = decodeMessage(b);
    assert.ok(m.ok);
    return m.value;
  });
}

test('PING answers node id, free capacity and price', async () => {
  const { d, ask } = await daemon({ price: 3, capacity: 512 });
  try {
    const r = await ask({ type: 'PING' });
    assert.ok(r.type === 'PONG');
    assert.deepEqual([r.nodeId, r.freeMiB, r.price], ['node-a', 512, 3]);
  } finally {
    await d.close();
  }
});

test('oversize, truncated, malformed and unknown-type datagrams are refused with their reason', async () => {
  const { d, addr } = await daemon();
  try {
    const token = mint().raw;
    const big = encodeMessage({
      type: 'BOOT',
      reqId: 1,
      token: Buffer.concat([token, Buffer.alloc(MAX_DATAGRAM)]),
    });
    const replies = await raw(
      addr,
      [
        big,
        Buffer.from([0x02, 0, 0, 0]), // shorter than the header
        Buffer.alloc(0),
        encodeMessage({ type: 'BOOT', reqId: 3, token: token.subarray(0, 100) }),
        encodeMessage({
          type: 'STATUS',
          reqId: 4,
          jobId: Buffer.alloc(16),
          mac: Buffer.alloc(32),
        }).subarray(0, 12),
        Buffer.concat([encodeMessage({ type: 'PING', reqId: 5 }), Buffer.from([0])]),
        Buffer.from([0x33, 0, 0, 0, 6]),
      ],
      7,
    );
    const byId = new Map(replies.map((m) => [m.reqId, refusal(m)]));
    assert.equal(byId.get(1), 'refused:oversize');
    assert.equal(
      replies.filter((m) => m.reqId === 0 && refusal(m) === 'refused:truncated').length,
      2,
    );
    assert.equal(byId.get(3), 'refused:truncated', 'a truncated boot token');
    assert.equal(byId.get(4), 'refused:truncated');
    assert.equal(byId.get(5), 'refused:malformed', 'trailing bytes');
    assert.equal(byId.get(6), 'refused:unknown-type');
  } finally {
    await d.close();
  }
});

test('reply types are never answered, so two daemons cannot be made to loop', async () => {
  const { d, addr } = await daemon();
  try {
    const replies = await raw(
      addr,
      [
        encodeMessage({ type: 'REFUSED', reqId: 1, reason: 1 }),
        encodeMessage({ type: 'PONG', reqId: 2, nodeId: 'x', freeMiB: 1, price: 1 }),
        Buffer.from([0x99, 1, 2, 3, 4, 5]),
      ],
      0,
    );
    assert.equal(replies.length, 0);
  } finally {
    await d.close();
  }
});
