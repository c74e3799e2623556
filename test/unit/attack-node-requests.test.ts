// Issue 13, attack 2, as a stranger on the network would try it: the job id is
// in clear in a sniffed BOOT datagram, so name it in REFUND, STATUS and TOPUP
// datagrams without the job's key. Each is refused before anything is looked
// up; the victim's VM keeps running and its balance is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { decodeMessage, encodeMessage } from '../../src/host/protocol.js';
import { signedDatagram } from '../../src/host/client.js';
import { decodeBootToken } from '../../src/tokens/boot-token.js';
import { daemon, mint, refusal } from '../packetd-fixtures.js';

async function send(addr: string, d: Buffer): Promise<string> {
  const [host, port] = addr.split(':');
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  s.send(d, Number(port), host);
  const [reply] = (await Promise.race([
    once(s, 'message'),
    new Promise((_, no) => setTimeout(() => no(new Error('no answer')), 2000)),
  ])) as [Buffer];
  s.close();
  const m = decodeMessage(reply);
  assert.ok(m.ok);
  return refusal(m.value);
}

test('a job id sniffed from a BOOT datagram gives a stranger nothing', async () => {
  const { d, addr, ask, stopped } = await daemon();
  try {
    const m = mint({ units: 10, n: 100 });
    const bootDatagram = encodeMessage({ type: 'BOOT', reqId: 1, token: m.raw });
    assert.equal((await ask({ type: 'BOOT', token: m.raw })).type, 'ACCEPTED');
    // The attacker's view: the datagram on the wire, parsed.
    const sniffed = decodeBootToken(bootDatagram.subarray(5));
    assert.ok(sniffed.ok);
    const jobId = sniffed.value.jobId;
    const anyMac = Buffer.alloc(32);
    for (const mac of [anyMac, randomBytes(32)]) {
      assert.equal(
        await send(addr, encodeMessage({ type: 'REFUND', reqId: 2, jobId, mac })),
        'refused:unauthenticated',
      );
      assert.equal(
        await send(addr, encodeMessage({ type: 'STATUS', reqId: 3, jobId, mac })),
        'refused:unauthenticated',
      );
      const element = randomBytes(32);
      assert.equal(
        await send(
          addr,
          encodeMessage({ type: 'TOPUP', reqId: 4, jobId, element, units: 9999, mac }),
        ),
        'refused:unauthenticated',
      );
    }
    // Signed with a key of the attacker's own (e.g. its own job's key): still refused.
    assert.equal(
      await send(addr, signedDatagram({ type: 'REFUND', jobId }, 5, randomBytes(32))),
      'refused:unauthenticated',
    );
    // A reply to an unknown job says no more than a reply to a real one.
    assert.equal(
      await send(
        addr,
        encodeMessage({ type: 'STATUS', reqId: 6, jobId: randomBytes(16), mac: anyMac }),
      ),
      'refused:unauthenticated',
    );
    const j = d.job(jobId.toString('hex'));
    assert.equal(j?.state, 'running', "the victim's VM runs on");
    assert.equal(j?.certificate, undefined, 'no certificate was signed');
    assert.deepEqual(stopped, []);
    const s = await ask({ type: 'STATUS', jobId });
    assert.ok(
      s.type === 'BALANCE' && s.balance === 10 && s.closed === 0,
      'the owner still sees it',
    );
  } finally {
    await d.close();
  }
});
