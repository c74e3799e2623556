// Issue 13, attack 6 (last part): any local process holding a warm cstrap's port
// made paying customers' uploads fail: the first connection claimed the cstrap
// before proving anything. The attacker here connects to the cstrap many times
// (more than it lets wait), says nothing on some connections, half a hello on
// others, and keeps them all open; the customer's upload, which proves the key,
// still gets the cstrap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { example, freePort, roam } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';

const echo = (port: number, line: string) =>
  new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) resolve((s.end(), got.trim()));
    });
    s.once('error', reject);
    setTimeout(() => (s.destroy(), reject(new Error(`no echo: "${got}"`))), 5000);
  });

test(
  'connections that never prove the key do not keep a customer out of a cstrap',
  { timeout: 120_000 },
  async () => {
    const dst = await cstrap();
    const [host, port] = [
      dst.addr.slice(0, dst.addr.lastIndexOf(':')),
      Number(dst.addr.split(':').pop()),
    ];
    const squatters: net.Socket[] = [];
    try {
      for (let i = 0; i < 40; i++) {
        const s = net.connect(port, host);
        s.on('error', () => undefined);
        await new Promise((r) => s.once('connect', r));
        if (i % 2) s.write('ROAMMIG1'); // the start of a hello, and then nothing
        squatters.push(s);
      }
      const open = squatters.filter((s) => !s.destroyed).length;
      assert.ok(open >= 30, `the squatters hold ${open} connections`);
      const p = await freePort();
      const up = await roam([
        'run',
        '--to',
        dst.addr,
        '--tcplisten',
        `127.0.0.1:${p}`,
        example('echo-server'),
      ]);
      assert.equal(up.code, 0, `the customer's upload failed: ${up.stderr}\n${dst.stderr()}`);
      assert.equal(await echo(p, 'paid'), 'echo 1: paid');
      assert.doesNotMatch(dst.stderr(), /refused: a migration is already arriving/);
    } finally {
      for (const s of squatters) s.destroy();
      dst.proc.kill('SIGKILL');
      await dst.exited;
    }
  },
);
