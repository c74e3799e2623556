// Double spending: a job's chain is minted for one node only, so its token and
// its top-ups are worthless anywhere else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTopUp } from '../../src/tokens/issue.js';
import { daemon, fakeVm, refusal } from '../packetd-fixtures.js';
import { broker } from '../broker-fixtures.js';

test('the same job presented at two nodes is refused by the other node', async () => {
  const b = await broker();
  const a = await b.client.enrollNode('node-a');
  const bb = await b.client.enrollNode('node-b');
  const mallory = await b.customer('mallory', 100);
  const nodeA = await daemon({ nodeId: 'node-a', secret: Buffer.from(a.secret, 'hex') });
  const nodeB = await daemon({ nodeId: 'node-b', secret: Buffer.from(bb.secret, 'hex') });
  // A misconfigured node that shares node-a's secret still checks the node id.
  const nodeC = await daemon({ nodeId: 'node-c', secret: Buffer.from(a.secret, 'hex') });
  try {
    const t = await mallory.buy({ node: 'node-a', count: 10 });
    assert.equal(refusal(await nodeB.ask({ type: 'BOOT', token: t.token })), 'refused:wrong-node');
    assert.equal(refusal(await nodeC.ask({ type: 'BOOT', token: t.token })), 'refused:wrong-node');
    assert.equal((await nodeA.ask({ type: 'BOOT', token: t.token })).type, 'ACCEPTED');
    const up = decodeTopUp((await mallory.topup(t.jobId, 5)).message);
    assert.ok(up.ok);
    assert.equal(refusal(await nodeB.ask({ type: 'TOPUP', ...up.value })), 'refused:unknown-job');
    assert.equal((await nodeA.ask({ type: 'TOPUP', ...up.value })).type, 'BALANCE');
    assert.equal(nodeB.launches.length + nodeC.launches.length, 0);
  } finally {
    await Promise.all([nodeA.d.close(), nodeB.d.close(), nodeC.d.close()]);
    await b.close();
  }
});

test('a certificate from another node, or a forged one, is not refunded', async () => {
  const b = await broker();
  const a = await b.client.enrollNode('node-a');
  const other = await b.client.enrollNode('node-b');
  const mallory = await b.customer('mallory', 100);
  const nodeA = await daemon({ nodeId: 'node-a', secret: Buffer.from(a.secret, 'hex') });
  // node-b signs a certificate naming node-a's job: its secret is not node-a's.
  const liar = await daemon({
    nodeId: 'node-a',
    secret: Buffer.from(other.secret, 'hex'),
    launcher: async () => fakeVm('vm-liar'),
  });
  try {
    const t = await mallory.buy({ node: 'node-a', count: 10 });
    assert.equal((await nodeA.ask({ type: 'BOOT', token: t.token })).type, 'ACCEPTED');
    assert.equal(refusal(await liar.ask({ type: 'BOOT', token: t.token })), 'refused:forged');
    const c = await nodeA.ask({ type: 'REFUND', jobId: Buffer.from(t.jobId, 'hex') });
    assert.ok(c.type === 'CERT');
    const tampered = Buffer.from(c.certificate);
    tampered[tampered.length - 45] ^= 1;
    await assert.rejects(mallory.redeem(tampered), /signature/);
    await assert.rejects(mallory.redeem(Buffer.from('garbage')), /certificate: /);
    assert.equal((await mallory.redeem(c.certificate)).amount, 10);
  } finally {
    await Promise.all([nodeA.d.close(), liar.d.close()]);
    await b.close();
  }
});
