// Issue 13, attack 3: kill -9 the node daemon and replay a boot token it had
// accepted. The job table is on disk before any answer, so after the restart
// the token is refused as a replay; the VM that suspended itself when the
// daemon died is found again and revived (its credit remains), the orphaned
// warm cstrap's folder is removed, and the job can still be refunded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { request } from '../../src/host/client.js';
import { loaderHash } from '../../src/migrate/loader.js';
import { iterate, mintBootToken, newSeed, vmKey } from '../../src/tokens/index.js';
import { example, freePort, roam, sleep, start, tmpdir, until, type Running } from '../helpers.js';

async function node(dir: string): Promise<{ r: Running; addr: string }> {
  const r = start([
    'node',
    '--id',
    'n1',
    '--secret-file',
    path.join(dir, 'secret'),
    '--listen',
    '127.0.0.1:0',
    '--state',
    path.join(dir, 'vms'),
    '--warm',
    '1',
    '--grace',
    '20',
  ]);
  r.vmId.catch(() => {});
  await until(() => /udp:\/\/\S+/.test(r.stdout()), `the node to listen: ${r.stderr()}`, 20_000);
  return { r, addr: /udp:\/\/(\S+)/.exec(r.stdout())![1] };
}

/** One line to the echo server, its answer line back. */
const echo = (port: number, line: string) =>
  new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) {
        s.end();
        resolve(got.trim());
      }
    });
    s.once('error', reject);
    setTimeout(() => (s.destroy(), reject(new Error(`no echo: "${got}"`))), 3000);
  });

test(
  'after kill -9 and a restart, a used token does not boot again; its VM is revived',
  { timeout: 180_000 },
  async () => {
    const dir = tmpdir('restart'),
      secret = randomBytes(32);
    fs.writeFileSync(path.join(dir, 'secret'), secret.toString('hex'), { mode: 0o600 });
    const seed = newSeed(),
      jobId = randomBytes(16);
    const token = mintBootToken(
      {
        nodeId: 'n1',
        jobId,
        anchor: iterate(seed, 2000),
        payment: iterate(seed, 1000),
        units: 1000,
        memoryMiB: 64,
        cpuShare: 100,
        ports: 1,
        lifetimeS: 3600,
        loaderSha256: Buffer.from(loaderHash(), 'hex'),
        expiry: Math.floor(Date.now() / 1000) + 600,
      },
      secret,
    );
    const file = path.join(dir, 'job.token');
    fs.writeFileSync(file, token);
    fs.writeFileSync(`${file}.key`, vmKey(secret, jobId), { mode: 0o600 });

    const procs: Running[] = [];
    try {
      const first = await node(dir);
      procs.push(first.r);
      const boot = await roam(['boot', file, '--node', first.addr]);
      const addr = /cstrap (\S+)/.exec(boot.stdout)?.[1];
      assert.ok(addr, boot.stderr);
      const port = await freePort();
      const up = await roam([
        'run',
        '--to',
        addr,
        '--key',
        `${file}.key`,
        '--tcplisten',
        `127.0.0.1:${port}`,
        example('echo-server'),
      ]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(await echo(port, 'a'), 'echo 1: a');
      const vmDirs = () => fs.readdirSync(path.join(dir, 'vms')).filter((d) => d.startsWith('vm-'));
      // The warm pool refills a moment after a boot.
      await until(() => vmDirs().length === 2, 'the job VM and one warm cstrap', 20_000);

      first.r.proc.kill('SIGKILL');
      await first.r.exited;
      await sleep(300);
      const second = await node(dir);
      procs.push(second.r);
      // The replay: refused, and no VM was started for it.
      const replay = await roam(['boot', file, '--node', second.addr]);
      assert.notEqual(replay.code, 0);
      assert.match(replay.stderr, /node refused: replayed/);
      // The suspended VM is found and revived with its state: the echo count goes on.
      await until(
        () => second.r.stderr().includes('revived'),
        `revival: ${second.r.stderr()}`,
        60_000,
      );
      let line = '';
      for (let i = 0; i < 100 && !line; i++)
        line = await echo(port, 'b').catch(() => sleep(200).then(() => ''));
      assert.equal(line, 'echo 2: b');
      const vmsAfter = fs.readdirSync(path.join(dir, 'vms')).filter((d) => d.startsWith('vm-'));
      assert.match(second.r.stderr(), /removing vm-[0-9a-f]+: no job of this node's owns it/);
      assert.equal(
        vmsAfter.length,
        2,
        "the job's VM and a new warm cstrap; the old one's folder is gone",
      );
      // And it can be refunded: one certificate, for what is left.
      const key = fs.readFileSync(`${file}.key`);
      const cert = await request(second.addr, { type: 'REFUND', jobId }, { key });
      assert.equal(cert.type, 'CERT');
      const st = await request(second.addr, { type: 'STATUS', jobId }, { key });
      assert.ok(st.type === 'BALANCE' && st.closed === 1 && st.credited === 1000);
    } finally {
      // A failing assertion must not leave the daemons (and so this test file) running.
      for (const p of procs) p.proc.kill('SIGKILL');
    }
  },
);
