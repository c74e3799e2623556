// Flood the daemon with random and mutated datagrams (ROAM_FUZZ_COUNT, default
// 20,000; the full run uses 1,000,000): it must not crash, must start no VM
// and credit no unit without a valid token or chain element, and must still
// serve a valid BOOT during and after the flood.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { encodeMessage } from '../../src/host/protocol.js';
import { signedDatagram } from '../../src/host/client.js';
import { vmKey } from '../../src/tokens/mac.js';
import { verifyCertificate } from '../../src/tokens/issue.js';
import { SECRET, daemon, mint, type Minted } from '../packetd-fixtures.js';

const COUNT = Math.min(Number(process.env.ROAM_FUZZ_COUNT ?? 20_000), 1_000_000);

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (randomInt(7)) {
    case 0:
      for (let i = randomInt(1, 4); i > 0 && out.length; i--)
        out[randomInt(out.length)] ^= 1 << randomInt(8);
      return out;
    case 1:
      if (out.length) out[randomInt(out.length)] = randomInt(256);
      return out;
    case 2:
      return out.subarray(0, randomInt(out.length + 1));
    case 3:
      return Buffer.concat([out, randomBytes(randomInt(1, 1400))]);
    case 4:
      out[0] = randomInt(256);
      return out;
    case 5: {
      const at = randomInt(out.length + 1);
      return Buffer.concat([out.subarray(0, at), randomBytes(randomInt(1, 40)), out.subarray(at)]);
    }
    default:
      return out; // an exact copy: replays of valid messages
  }
}

test(`fuzz: ${COUNT} random and mutated datagrams`, { timeout: 600_000 }, async () => {
  const { d, addr, ask, launches } = await daemon({ capacity: 1 << 30 });
  const minted = new Map<string, Minted>();
  const fresh = () => {
    const m = mint({ units: 5, n: 60, memoryMiB: 1 });
    minted.set(m.jobId.toString('hex'), m);
    return m;
  };
  try {
    // Seeds: valid messages of every type, for one booted job and for unused tokens.
    const booted = fresh(),
      key = vmKey(SECRET, booted.jobId);
    assert.equal((await ask({ type: 'BOOT', token: booted.raw })).type, 'ACCEPTED');
    const seeds = [
      encodeMessage({ type: 'PING', reqId: 1 }),
      signedDatagram({ type: 'STATUS', jobId: booted.jobId }, 2, key),
      signedDatagram(
        { type: 'TOPUP', jobId: booted.jobId, element: booted.element(50), units: 5 },
        3,
        key,
      ),
      signedDatagram(
        { type: 'TOPUP', jobId: booted.jobId, element: booted.element(45), units: 10 },
        4,
        key,
      ),
      // The same without the job's key: refused before anything is looked up.
      signedDatagram({ type: 'REFUND', jobId: booted.jobId }, 5, randomBytes(32)),
      ...Array.from({ length: 8 }, (_, i) =>
        encodeMessage({ type: 'BOOT', reqId: 10 + i, token: fresh().raw }),
      ),
      encodeMessage({ type: 'BOOT', reqId: 20, token: mint({ secret: randomBytes(32) }).raw }),
    ];
    const [host, port] = addr.split(':');
    const s = dgram.createSocket('udp4');
    let replies = 0,
      expected = 0,
      lost = 0;
    s.on('message', () => replies++);
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    let duringFlood: Promise<unknown> | undefined;
    for (let i = 0; i < COUNT; i++) {
      const pick = randomInt(10);
      const datagram =
        pick < 3 ? randomBytes(randomInt(0, 1500)) : mutate(seeds[randomInt(seeds.length)]);
      s.send(datagram, Number(port), host);
      if (datagram.length === 0 || datagram[0] < 0x80) expected++; // replies are never answered
      // Flow control: keep a window of unanswered datagrams so that loopback does
      // not just drop the flood; a datagram that is lost anyway stalls us 20 ms once.
      for (let waited = 0; expected - replies - lost > 256; waited++) {
        if (waited === 20) {
          lost = expected - replies;
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      if (i === COUNT >> 1) {
        const m = fresh();
        duringFlood = ask({ type: 'BOOT', token: m.raw }).then((r) =>
          assert.equal(r.type, 'ACCEPTED', 'valid BOOT during the flood'),
        );
      }
    }
    await duringFlood;
    await new Promise((r) => setTimeout(r, 200));
    s.close();
    // Loopback may drop some under load; most must have been read and answered.
    assert.ok(replies > expected * 0.9, `only ${replies} of ${expected} answered`);
    const after = await ask({ type: 'BOOT', token: fresh().raw });
    assert.equal(after.type, 'ACCEPTED', 'valid BOOT after the flood');

    // Every VM started belongs to a token we minted, once; every job's credit is
    // exactly what its chain proves (the certificate's element is s_{n-credited}).
    const ids = launches.map((l) => l.jobId);
    assert.equal(new Set(ids).size, ids.length, 'no job launched twice');
    for (const id of ids) {
      const m = minted.get(id);
      assert.ok(m, `launched an unknown job ${id}`);
      const r = await ask({ type: 'REFUND', jobId: m.jobId });
      assert.ok(r.type === 'CERT');
      const c = verifyCertificate(r.certificate, SECRET);
      assert.ok(c.ok);
      const credited = c.value.spent + c.value.unspent;
      assert.ok(credited >= 5 && credited <= m.n);
      assert.deepEqual(
        c.value.last,
        m.element(m.n - credited),
        `job ${id} credited ${credited} units without proof`,
      );
    }
    console.log(
      `fuzz: ${COUNT} datagrams, ${replies} answered, ${launches.length} valid boots launched`,
    );
  } finally {
    await d.close();
  }
});
