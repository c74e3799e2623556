// Pulse with real processes: a rendezvous server, a waiting subscriber and a
// release, each its own `roam` process over real UDP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { roam, start, until } from '../helpers.js';

void test('roam pulse: wait hears release through a rendezvous server; a wrong s is not taken', async () => {
  const srv = start(['pulse', '--listen', '127.0.0.1:0', '--json']);
  srv.vmId.catch(() => undefined); // no VM here
  await until(() => srv.stdout().includes('listening'), 'the rendezvous server');
  const addr = (JSON.parse(srv.stdout().split('\n')[0]) as { addr: string }).addr;
  const s = randomBytes(32);
  const h = createHash('sha256').update(s).digest('hex');
  const waiter = start(['pulse', 'wait', h, '--rendezvous', addr, '--renew', '1', '--json']);
  waiter.vmId.catch(() => undefined);
  try {
    await new Promise((r) => setTimeout(r, 1500)); // subscribed (and renewed once)
    const wrong = await roam([
      'pulse',
      'release',
      randomBytes(32).toString('hex'),
      '--rendezvous',
      addr,
      '--json',
    ]);
    assert.equal(wrong.code, 0, wrong.stderr);
    assert.deepEqual((JSON.parse(wrong.stdout) as { servers: Record<string, number> }).servers, {
      [addr]: 0,
    });
    const r = await roam(['pulse', 'release', s.toString('hex'), '--rendezvous', addr, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { servers: Record<string, number> }).servers, {
      [addr]: 1,
    });
    assert.equal(await waiter.exited, 0, waiter.stderr());
    assert.equal((JSON.parse(waiter.stdout()) as { s: string }).s, s.toString('hex'));
    // Nobody answers at a dead address: the release says so and fails.
  } finally {
    waiter.proc.kill('SIGKILL');
    srv.proc.kill('SIGTERM');
    await srv.exited;
  }
  const dead = await roam([
    'pulse',
    'release',
    randomBytes(32).toString('hex'),
    '--rendezvous',
    addr,
  ]);
  assert.notEqual(dead.code, 0);
  assert.match(dead.stderr, /no rendezvous server answered/);
  const bad = await roam(['pulse', 'release', 'xyz', '--rendezvous', addr]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /64 hex digits/);
});
