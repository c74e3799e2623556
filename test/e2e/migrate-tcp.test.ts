// A game-server-like guest migrated live while clients exchange messages with it
// every few milliseconds. Each client's running checksum is computed by the server
// from the sequence numbers it has applied; a client that loses its connection at
// the move reconnects and resends, and every reply must still match: no message
// lost, none applied twice. (Connections do not move yet, so an answer can be lost
// with the connection after its message was applied; the server answers a resent
// last message again without applying it again, as a server for retrying clients must.)
import assert from 'node:assert/strict';
import net from 'node:net';
import readline from 'node:readline';
import { test } from 'node:test';
import { example, roam, sleep, start, until, freePort } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';

/** One client: sends "ID SEQ" every few ms, checks each reply, reconnects when cut. */
function client(port: number, id: number, stop: () => boolean) {
  let h = 0x811c9dc5;
  let maxGap = 0,
    reconnects = 0,
    seq = 0;
  const run = async () => {
    let last = performance.now();
    while (!stop()) {
      let sock: net.Socket;
      try {
        sock = await new Promise<net.Socket>((res, rej) => {
          const s = net.connect(port, '127.0.0.1', () => res(s));
          s.once('error', rej);
        });
      } catch {
        await sleep(2);
        continue;
      }
      sock.on('error', () => {});
      const lines = readline.createInterface({ input: sock })[Symbol.asyncIterator]();
      try {
        while (!stop()) {
          const next = seq + 1;
          sock.write(`${id} ${next}\n`);
          const r = await Promise.race([
            lines.next(),
            sleep(5000).then(() => ({ done: true, value: undefined })),
          ]);
          if (r.done) break; // cut: reconnect and resend the same message
          const want = (Math.imul((h ^ next) >>> 0, 16777619) ^ id) >>> 0;
          assert.equal(
            r.value,
            `${next} ${want.toString(16).padStart(8, '0')}`,
            `client ${id} message ${next}`,
          );
          h = want;
          seq = next;
          const now = performance.now();
          maxGap = Math.max(maxGap, now - last);
          last = now;
          await sleep(3);
        }
      } finally {
        sock.destroy();
      }
      if (!stop()) reconnects++;
    }
  };
  return { done: run(), stats: () => ({ maxGap, reconnects, seq }) };
}

test('game server migrated while 4 clients talk to it: every reply consistent, clients reconnect', async () => {
  const port = await freePort();
  const dst = await cstrap();
  const vm = start(['run', '--tcplisten', `127.0.0.1:${port}`, example('game-server')]);
  const id = await vm.vmId;
  await until(() => vm.stdout().includes('listening'), 'server start');
  let stopping = false,
    failed: Error | null = null;
  const clients = [1, 2, 3, 4].map((i) => client(port, i, () => stopping || failed !== null));
  // A wrong reply stops every client at once and fails the test (not a wait for a timeout).
  for (const c of clients)
    c.done.catch((e) => {
      failed ??= e as Error;
    });
  const progress = (pred: () => boolean) => () => {
    if (failed) throw failed;
    return pred();
  };
  try {
    await until(
      progress(() => clients.every((c) => c.stats().seq >= 20)),
      'clients to get going',
    );
    const m = await roam(['migrate', id, '--to', dst.addr, '--json']);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(await vm.exited, 0, vm.stderr());
    const before = clients.map((c) => c.stats().seq);
    await until(
      progress(() => clients.every((c, i) => c.stats().seq >= before[i] + 20)),
      'clients to carry on with the migrated server',
      30_000,
    );
    stopping = true;
    await Promise.all(clients.map((c) => c.done));
    assert.ok(
      clients.every((c) => c.stats().reconnects >= 1),
      'each client reconnected to the destination',
    );
    // Shut the migrated server down through the protocol.
    const q = await new Promise<net.Socket>((res) => {
      const s = net.connect(port, '127.0.0.1', () => res(s));
    });
    q.write('quit\n');
    assert.equal(await dst.exited, 0, dst.stderr());
    assert.match(dst.stdout(), /served \d+ messages/);
  } finally {
    stopping = true;
    vm.proc.kill('SIGKILL');
    dst.proc.kill('SIGKILL');
  }
});
