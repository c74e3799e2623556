// Issue 13, attack 4: a customer floods its own job with TOPUPs that each claim
// 10,000 units with a wrong element, so that each would cost the node 10,000
// hashes before it refuses (before: ~200 a second pushed PING past 8 s). The
// node spends a bounded hashing budget per source and for itself; the rest is
// refused at once as rate-limited, PING is answered, and nothing is credited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeMessage } from '../../src/host/protocol.js';
import { signedDatagram } from '../../src/host/client.js';
import { MAX_UNITS } from '../../src/tokens/chain.js';
import { vmKey } from '../../src/tokens/mac.js';
import { SECRET, daemon, mint, refusal } from '../packetd-fixtures.js';

test('a TOPUP flood is rate-limited per source and for the node; PING and the meter go on', async () => {
  let clock = 1_000_000; // the daemon's clock is the test's: the budget's second ends when we say
  const { d, ask } = await daemon({ now: () => clock });
  try {
    const m = mint({ units: 10, n: 100 });
    assert.equal((await ask({ type: 'BOOT', token: m.raw })).type, 'ACCEPTED');
    const key = vmKey(SECRET, m.jobId);
    const bogus = (i: number) =>
      signedDatagram(
        { type: 'TOPUP', jobId: m.jobId, element: randomBytes(32), units: MAX_UNITS },
        i,
        key,
      );
    const answer = async (i: number, address: string) => {
      const r = decodeMessage((await d.handle(bogus(i), { address, port: 1 }))!);
      assert.ok(r.ok);
      return refusal(r.value);
    };
    const one: string[] = [];
    for (let i = 0; i < 50; i++) one.push(await answer(i, '10.0.0.1'));
    const verified = one.filter((r) => r === 'refused:chain-mismatch').length;
    assert.equal(verified, 4, 'one source: 4 x 10,000 hashes a second, no more');
    assert.equal(one.filter((r) => r === 'refused:rate-limited').length, 46);
    // Many sources (UDP source addresses are cheap to forge): the job's budget holds.
    const many: string[] = [];
    for (let i = 0; i < 100; i++) many.push(await answer(100 + i, `10.0.1.${i}`));
    assert.equal(many.filter((r) => r === 'refused:chain-mismatch').length, 0);
    // Other jobs of the same tenant: the node's own budget (16 x 10,000) holds.
    let spent = 4;
    for (let j = 0; j < 6; j++) {
      const other = mint({ units: 10, n: 100 });
      await ask({ type: 'BOOT', token: other.raw });
      for (let i = 0; i < 10; i++) {
        const r = decodeMessage(
          (await d.handle(
            signedDatagram(
              { type: 'TOPUP', jobId: other.jobId, element: randomBytes(32), units: MAX_UNITS },
              i,
              vmKey(SECRET, other.jobId),
            ),
            { address: `10.0.2.${j * 10 + i}`, port: 1 },
          ))!,
        );
        assert.ok(r.ok);
        if (refusal(r.value) === 'refused:chain-mismatch') spent++;
      }
    }
    assert.equal(spent, 16, 'the node hashes at most 16 x 10,000 a second for top-ups');
    const pong = await ask({ type: 'PING' });
    assert.equal(pong.type, 'PONG', 'PING is answered during the flood');
    d.tick(1);
    const s = await ask({ type: 'STATUS', jobId: m.jobId });
    assert.ok(s.type === 'BALANCE' && s.credited === 10, 'nothing was credited');
    // The budget is renewed each second: a real top-up then goes through.
    clock++;
    const ok = await ask({ type: 'TOPUP', jobId: m.jobId, element: m.element(85), units: 5 });
    assert.ok(ok.type === 'BALANCE' && ok.credited === 15, refusal(ok));
  } finally {
    await d.close();
  }
});
