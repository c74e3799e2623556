// The HTTP layer refuses bad requests with a status and a code, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { broker } from '../broker-fixtures.js';

test('bad requests get clear JSON errors', async () => {
  const b = await broker();
  try {
    const post = (path: string, body: string) =>
      fetch(b.server.url + path, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
    const cases: Array<[Promise<Response>, number, string]> = [
      [post('/v1/nodes', '{nope'), 400, 'bad-json'],
      [post('/v1/nodes', '[1]'), 400, 'bad-json'],
      [post('/v1/nodes', JSON.stringify({ id: { x: 1 } })), 400, 'bad-node-id'],
      [
        post('/v1/tokens', JSON.stringify({ customer: 'a', node: 'b', count: '3' })),
        400,
        'bad-count',
      ],
      [post('/v1/tokens', 'x'.repeat(70_000)), 413, 'too-large'],
      [fetch(b.server.url + '/v1/nodes'), 405, 'bad-method'],
      [fetch(b.server.url + '/nowhere'), 404, 'not-found'],
      [fetch(b.server.url + '/v1/jobs/' + '0'.repeat(32)), 404, 'unknown-job'],
      [post('/v1/redemptions', JSON.stringify({ certificate: 42 })), 400, 'bad-certificate'],
    ];
    for (const [res, status, error] of cases) {
      const r = await res;
      assert.equal(r.status, status, error);
      assert.equal(((await r.json()) as { error: string }).error, error);
    }
    const ok = await post('/v1/customers', JSON.stringify({ id: 'c1', balance: 5 }));
    assert.deepEqual(await ok.json(), { id: 'c1', balance: 5 });
  } finally {
    await b.close();
  }
});
