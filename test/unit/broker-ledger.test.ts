// The ledger on its own: schema migrations, accounts, chains and refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '../../src/broker/ledger.js';
import { BrokerError } from '../../src/broker/errors.js';
import { SECRET } from '../packetd-fixtures.js';
import { verifyBootToken, verifyElement, decodeTopUp, iterate } from '../../src/tokens/index.js';

function withLedger(fn: (l: Ledger, file: string) => void, o = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'roam-ledger-'));
  const file = join(dir, 'l.db');
  const l = new Ledger(file, { chainLength: 50, ...o });
  try {
    fn(l, file);
  } finally {
    l.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;

test('migrations run once and a reopened ledger keeps its data', () => {
  withLedger((l, file) => {
    assert.equal(l.db.pragma('user_version', { simple: true }), 2);
    l.addCustomer('bob', 5);
    const again = new Ledger(file);
    assert.equal(again.customer('bob').balance, 5);
    again.close();
  });
});

test('a bought token is signed with the node secret and carries a fresh chain', () => {
  withLedger((l) => {
    const { secret } = l.enrollNode('n1', 2);
    assert.throws(() => l.enrollNode('n1'), code('node-exists'));
    assert.throws(() => l.enrollNode('bad id'), code('bad-node-id'));
    l.addCustomer('bob', 100);
    const r = l.buy({
      customer: 'bob',
      node: 'n1',
      count: 10,
      memoryMiB: 77,
      loaderSha256: 'ab'.repeat(32),
    });
    const v = verifyBootToken(r.token, Buffer.from(secret, 'hex'), 'n1', 0);
    assert.ok(v.ok);
    assert.equal(v.value.memoryMiB, 77);
    assert.equal(verifyBootToken(r.token, SECRET, 'n1', 0).ok, false);
    const row = l.job(r.jobId);
    assert.deepEqual(v.value.anchor, iterate(row.seed, 50), 'anchor is s_n');
    assert.equal(r.balance, 80);
    const t = l.topup(r.jobId, 15);
    const up = decodeTopUp(t.message);
    assert.ok(up.ok && verifyElement(up.value.element, 15, v.value.payment));
    assert.equal(t.balance, 50);
    assert.equal(l.jobInfo(r.jobId).element, t.element);
    assert.ok(!('seed' in l.jobInfo(r.jobId)), 's_0 never leaves the broker');
  });
});

test('money is never overdrawn and chains end', () => {
  withLedger((l) => {
    l.enrollNode('n1', 10);
    l.addCustomer('bob', 100);
    assert.throws(
      () => l.buy({ customer: 'bob', node: 'n1', count: 11 }),
      code('insufficient-funds'),
    );
    assert.throws(() => l.buy({ customer: 'eve', node: 'n1', count: 1 }), code('unknown-customer'));
    assert.throws(() => l.buy({ customer: 'bob', node: 'n9', count: 1 }), code('unknown-node'));
    assert.throws(() => l.buy({ customer: 'bob', node: 'n1', count: 51 }), code('bad-count'));
    assert.throws(
      () => l.buy({ customer: 'bob', node: 'n1', count: 1, memoryMiB: -1 }),
      code('bad-limits'),
    );
    assert.equal(l.customer('bob').balance, 100, 'refusals move no money');
    l.deposit('bob', 1000);
    const r = l.buy({ customer: 'bob', node: 'n1', count: 40 });
    l.topup(r.jobId, 10);
    assert.throws(() => l.topup(r.jobId, 1), code('chain-exhausted'));
    const sum = l.db
      .prepare('SELECT SUM(delta) AS s FROM ledger WHERE customer = ?')
      .get('bob') as { s: number };
    assert.equal(sum.s, l.customer('bob').balance, 'the ledger explains the balance');
  });
});
