// Issue 13, attack 1, as a stranger or another tenant on loopback would try it:
// plain HTTP requests to the broker. Each is refused with a clear code, and
// nothing of the victim's changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerClient } from '../../src/broker/client.js';
import { BrokerError } from '../../src/broker/errors.js';
import { broker } from '../broker-fixtures.js';

const refused = (code: string, status: number) => (e: unknown) =>
  e instanceof BrokerError && e.code === code && e.status === status;

test('without a credential nothing is done: no deposit, no account, no node, no token, no top-up', async () => {
  const b = await broker();
  try {
    await b.client.enrollNode('n1');
    const alice = await b.customer('alice', 100);
    const job = await alice.buy({ node: 'n1', count: 10 });
    const stranger = new BrokerClient(b.server.url);
    const forged = new BrokerClient(b.server.url, `admin:admin:${'0'.repeat(64)}`);
    for (const c of [stranger, forged]) {
      await assert.rejects(c.deposit('alice', 1e9), refused('unauthenticated', 401));
      await assert.rejects(c.addCustomer('mallory', 2 ** 53), refused('unauthenticated', 401));
      await assert.rejects(c.enrollNode('evil'), refused('unauthenticated', 401));
      await assert.rejects(c.buy({ customer: 'alice', node: 'n1', count: 90 }), /credential/);
      await assert.rejects(c.topup(job.jobId, 5), refused('unauthenticated', 401));
      await assert.rejects(c.customer('alice'), refused('unauthenticated', 401));
    }
    const raw = await fetch(`${b.server.url}/v1/customers/alice/deposit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1e9 }),
    });
    assert.equal(raw.status, 401);
    assert.equal((await alice.customer('alice')).balance, 90, "alice's money is untouched");
    assert.equal((await alice.job(job.jobId)).released, 10);
    const row = b.server.ledger.db
      .prepare("SELECT COUNT(*) AS n FROM customers WHERE id = 'mallory'")
      .get() as { n: number };
    assert.equal(row.n, 0, 'no account was created');
  } finally {
    await b.close();
  }
});

test("another customer can neither see nor spend alice's account, nor touch her jobs", async () => {
  const b = await broker();
  try {
    await b.client.enrollNode('n1');
    const alice = await b.customer('alice', 1000);
    const mallory = await b.customer('mallory', 10);
    const job = await alice.buy({ node: 'n1', count: 10 });
    await assert.rejects(
      mallory.buy({ customer: 'alice', node: 'n1', count: 900 }),
      refused('forbidden', 403),
    );
    await assert.rejects(mallory.customer('alice'), refused('forbidden', 403));
    await assert.rejects(mallory.topup(job.jobId, 5), refused('unknown-job', 404));
    await assert.rejects(mallory.job(job.jobId), refused('unknown-job', 404));
    await assert.rejects(mallory.deposit('mallory', 1e9), refused('forbidden', 403));
    await assert.rejects(mallory.enrollNode('evil'), refused('forbidden', 403));
    await assert.rejects(mallory.addCustomer('sock', 5), refused('forbidden', 403));
    assert.equal((await alice.customer('alice')).balance, 990);
    assert.equal((await mallory.customer('mallory')).balance, 10);
    assert.equal((await alice.job(job.jobId)).released, 10);
  } finally {
    await b.close();
  }
});

test('amounts are bounded integers, even for the admin', async () => {
  const b = await broker();
  try {
    await assert.rejects(b.client.addCustomer('big', 2 ** 53), refused('bad-amount', 400));
    await b.customer('c', 0);
    for (const amount of [0, -5, 1.5, 1e10, Number.MAX_SAFE_INTEGER])
      await assert.rejects(b.client.deposit('c', amount), refused('bad-amount', 400));
    for (let i = 0; i < 999; i++) b.server.ledger.deposit('c', 1e9);
    await b.client.deposit('c', 1e9); // 1e12, the cap
    await assert.rejects(b.client.deposit('c', 1), /may not exceed/);
    assert.equal((await b.client.customer('c')).balance, 1e12);
  } finally {
    await b.close();
  }
});
