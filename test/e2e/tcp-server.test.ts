// A TCP server checkpointed while it waits for a client: the restored VM re-opens
// its listener, its old connection reports a reset, and its state (a line
// counter) carries on.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { example, roam, start, tmpdir, until, freePort } from '../helpers.js';

async function client(port: number) {
  for (let i = 0; ; i++) {
    try {
      const sock = await new Promise<net.Socket>((res, rej) => {
        const s = net.connect(port, '127.0.0.1', () => res(s));
        s.once('error', rej);
      });
      const lines = readline.createInterface({ input: sock })[Symbol.asyncIterator]();
      return {
        sock,
        async ask(line: string): Promise<string> {
          sock.write(line + '\n');
          const r = await lines.next();
          return r.value as string;
        },
      };
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('echo server: checkpoint while blocked in read, restore, listener re-opened, counter continues', async () => {
  const port = await freePort();
  const file = path.join(tmpdir('tcp'), 'server.ckpt');
  const vm = start(['run', '--tcplisten', `127.0.0.1:${port}`, example('echo-server')]);
  const id = await vm.vmId;
  await until(() => vm.stdout().includes('listening'), 'server start');
  const c = await client(port);
  assert.equal(await c.ask('a'), 'echo 1: a');
  assert.equal(await c.ask('b'), 'echo 2: b');

  const ck = await roam(['checkpoint', id, '-o', file]);
  assert.equal(ck.code, 0, ck.stderr);

  assert.equal(await c.ask('c'), 'echo 3: c', 'the source keeps serving after the checkpoint');
  assert.equal(await c.ask('quit'), 'bye');
  assert.equal(await vm.exited, 0);
  assert.match(vm.stdout(), /served 3 lines/);

  const restored = start(['restore', file]);
  await restored.vmId;
  const c2 = await client(port);
  assert.equal(await c2.ask('x'), 'echo 3: x', 'state at the checkpoint: two lines served');
  assert.equal(await c2.ask('quit'), 'bye');
  assert.equal(await restored.exited, 0, restored.stderr());
  assert.match(restored.stdout(), /served 3 lines/);
});
