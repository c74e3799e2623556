// The HTTP layer refuses bad requests with a status and a code, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { broker } from '../broker-fixtures.js';

test('bad requests get clear JSON errors', async () => {
  const b = await broker();
  try {
    const { key } = await b.client.addCustomer('c0', 0);
    const as = (cred: string) => ({ authorization: `Bearer ${cred}` });
    const post = (path: string, body: string, cred = b.adminKey) =>
      fetch(b.server.url + path, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...as(cred) },
      });
    const cases: Array<[Promise<Response>, number, string]> = [
      [post('/v1/nodes', '{nope'), 400, 'bad-json'],
      [post('/v1/nodes', '[1]'), 400, 'bad-json'],
      [post('/v1/nodes', JSON.stringify({ id: { x: 1 } })), 400, 'bad-node-id'],
      [post('/v1/tokens', JSON.stringify({ node: 'b', count: '3' }), key), 400, 'bad-count'],
      [post('/v1/tokens', 'x'.repeat(70_000), key), 413, 'too-large'],
      [fetch(b.server.url + '/v1/nodes'), 405, 'bad-method'],
      [fetch(b.server.url + '/nowhere'), 404, 'not-found'],
      [
        fetch(b.server.url + '/v1/jobs/' + '0'.repeat(32), { headers: as(key) }),
        404,
        'unknown-job',
      ],
      [post('/v1/redemptions', JSON.stringify({ certificate: 42 }), key), 400, 'bad-certificate'],
    ];
    for (const [res, status, error] of cases) {
      const r = await res;
      assert.equal(r.status, status, error);
      assert.equal(((await r.json()) as { error: string }).error, error);
    }
    const ok = await post('/v1/customers', JSON.stringify({ id: 'c1', balance: 5 }));
    const body = (await ok.json()) as { id: string; balance: number; key: string };
    assert.deepEqual([body.id, body.balance], ['c1', 5]);
    assert.match(body.key, /^customer:c1:[0-9a-f]{64}$/);
  } finally {
    await b.close();
  }
});
