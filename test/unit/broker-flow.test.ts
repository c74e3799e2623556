// The whole token life cycle over HTTP and real UDP: buy → boot → top up →
// status → refund → redeem once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../src/broker/errors.js';
import { decodeTopUp } from '../../src/tokens/issue.js';
import { charge, daemon, refusal } from '../packetd-fixtures.js';
import { broker } from '../broker-fixtures.js';

test('buy, boot, top up, status, refund, redeem once', async () => {
  const b = await broker({ chainLength: 200 });
  try {
    const { secret } = await b.client.enrollNode('node-a', 3);
    const alice = await b.customer('alice', 1000);
    const node = await daemon({ secret: Buffer.from(secret, 'hex') });
    try {
      const bought = await alice.buy({
        node: 'node-a',
        count: 10,
        memoryMiB: 32,
      });
      assert.deepEqual([bought.units, bought.cost, bought.balance], [10, 30, 970]);
      const acc = await node.ask({ type: 'BOOT', token: bought.token });
      assert.ok(acc.type === 'ACCEPTED', refusal(acc));
      assert.equal(acc.jobId.toString('hex'), bought.jobId);
      assert.equal(node.launches[0].memoryMiB, 32);

      const t = await alice.topup(bought.jobId, 20);
      assert.deepEqual([t.released, t.cost, t.balance], [30, 60, 910]);
      const msg = decodeTopUp(t.message);
      assert.ok(msg.ok);
      const credited = await node.ask({ type: 'TOPUP', ...msg.value });
      assert.ok(credited.type === 'BALANCE' && credited.balance === 30, refusal(credited));
      assert.equal(
        refusal(await node.ask({ type: 'TOPUP', ...msg.value })),
        'refused:already-credited',
      );

      // A block bought but never delivered is refunded too once the job is closed.
      await alice.topup(bought.jobId, 5);
      charge(node.d, node.pid(), 12);
      const st = await node.ask({ type: 'STATUS', jobId: acc.jobId });
      assert.ok(st.type === 'BALANCE');
      assert.deepEqual([st.balance, st.spent], [18, 12]);

      const cert = await node.ask({ type: 'REFUND', jobId: acc.jobId });
      assert.ok(cert.type === 'CERT');
      const r = await alice.redeem(cert.certificate);
      assert.deepEqual([r.units, r.amount], [35 - 12, 23 * 3]);
      assert.equal(r.balance, 1000 - 35 * 3 + 23 * 3);
      assert.equal((await alice.customer('alice')).balance, r.balance);

      await assert.rejects(
        alice.redeem(cert.certificate),
        (e: BrokerError) => e.code === 'already-redeemed' && e.status === 409,
      );
      const second = await node.ask({ type: 'REFUND', jobId: acc.jobId });
      assert.ok(second.type === 'CERT');
      await assert.rejects(
        alice.redeem(second.certificate),
        (e: BrokerError) => e.code === 'already-redeemed',
      );
      await assert.rejects(
        alice.topup(bought.jobId, 1),
        (e: BrokerError) => e.code === 'job-closed',
      );
      assert.equal((await alice.job(bought.jobId)).refunded, true);
      assert.equal((await alice.customer('alice')).balance, r.balance, 'refunded exactly once');
    } finally {
      await node.d.close();
    }
  } finally {
    await b.close();
  }
});
