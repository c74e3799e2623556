// Two `roam control` processes sharing one real PostgreSQL server (Debian's
// postgresql, started here in a temporary folder): what one writes the other
// serves, and two customers' concurrent changes to one workload never both win.
// Skipped, saying why, when PostgreSQL's tools or root (to run them as the
// postgres user) are missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { BrokerClient, readKeyFile } from '../../src/broker/client.js';
import { example, freePort, tmpdir } from '../helpers.js';
import { serve } from '../cluster-fixtures.js';

function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  for (const v of fs.readdirSync(root).sort().reverse()) {
    const bin = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl')))
      return bin;
  }
  return null;
}

const bin = pgBin();
const why = !bin
  ? 'PostgreSQL is not installed (apt-get install postgresql)'
  : process.getuid?.() !== 0
    ? 'needs root, to run PostgreSQL as the postgres user'
    : undefined;

void test(
  'two control services share one PostgreSQL',
  { skip: why, timeout: 300_000 },
  async () => {
    const dir = tmpdir('pg');
    // The postgres user must reach its data folder: let it through this run's folders (not read them).
    for (let d = dir; d.length > 1 && d.startsWith(os.tmpdir()); d = path.dirname(d))
      fs.chmodSync(d, fs.statSync(d).mode | 0o111);
    const data = path.join(dir, 'data');
    fs.mkdirSync(data, { mode: 0o700 });
    execFileSync('chown', ['postgres:postgres', data]);
    const as = (cmd: string, args: string[]) =>
      execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin!, cmd), ...args], {
        stdio: 'pipe',
      });
    as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres']);
    const port = await freePort();
    as('pg_ctl', [
      '-D',
      data,
      '-w',
      '-l',
      path.join(data, 'log'),
      '-o',
      `-p ${port} -k ${data} -c listen_addresses=127.0.0.1`,
      'start',
    ]);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const kids = [];
    try {
      const b = await serve(
        ['broker', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'ledger.db')],
        /listening on (http:\/\/\S+)/,
      );
      kids.push(b.r);
      const brokerAdmin = new BrokerClient(
        b.match,
        readKeyFile(path.join(dir, 'ledger.db.admin'), 'admin'),
      );
      const brokerKey = path.join(dir, 'alice.broker');
      fs.writeFileSync(brokerKey, (await brokerAdmin.addCustomer('alice', 1e9)).key, {
        mode: 0o600,
      });
      for (const n of ['n1', 'n2']) await brokerAdmin.enrollNode(n);
      const adminFile = path.join(dir, 'admin.key');
      const ctl = [];
      for (const _i of [0, 1]) {
        const c = await serve(
          [
            'control',
            '--listen',
            '127.0.0.1:0',
            '--db',
            url,
            '--broker',
            b.match,
            '--broker-key',
            brokerKey,
            '--admin-key-out',
            adminFile,
          ],
          /listening on (http:\/\/\S+)/,
        );
        kids.push(c.r);
        ctl.push(c.match);
      }
      const admin = fs.readFileSync(adminFile, 'utf8').trim(); // made once, by the first
      const [a, bAdmin] = ctl.map((u) => new ControlClient(u, admin));
      const alice = (await a.addCustomer('alice')).key;
      const n1 = (await bAdmin.addNode('n1')).key; // enrolled through the other service
      await bAdmin.addNode('n2');
      await assert.rejects(a.addNode('n1'), /exists/);
      const [ca, cb] = ctl.map((u) => new ControlClient(u, alice));
      const { sha256 } = await ca.putProgram(fs.readFileSync(example('echo-server')));
      const desc = (version: number, instances: number) => ({
        name: 'web',
        version,
        programs: [{ sha256, args: [] }],
        instances,
        memoryMiB: 32,
        ports: [],
        placement: { nodes: ['n1', 'n2'] },
      });
      assert.equal((await cb.submit(desc(1, 4))).version, 1);
      // The same version 2 through both services at once: exactly one wins.
      const both = await Promise.allSettled([ca.submit(desc(2, 2)), cb.submit(desc(2, 6))]);
      assert.equal(both.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(both));
      assert.match(
        String((both.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason),
        /not newer|conflict|serializ/i,
      );
      // Both services serve node n1 the same description.
      const views = await Promise.all(ctl.map((u) => new ControlClient(u, n1).node()));
      assert.deepEqual(views[0]!.view, views[1]!.view);
      assert.equal(views[0]!.h, views[1]!.h);
      const st = await cb.workload('web');
      assert.deepEqual(st.versions, [1, 2]);
      assert.equal(st.instances.length, (st.description as { instances: number }).instances);
    } finally {
      for (const k of kids) k.proc.kill('SIGKILL');
      as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    }
  },
);
