// A node whose --state folder has a long path (~150 characters): a VM's Unix
// control socket would be `STATE/vm-ID/vms/vm-ID-PID.sock`, past the 107 bytes a
// socket address holds, and the cstrap died at start. Now the socket is bound and
// reached through its folder (a short relative name), so the VM serves, `roam ps
// --node STATE` lists it, and a control request (a checkpoint) reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { loaderHash } from '../../src/migrate/loader.js';
import { iterate, mintBootToken, newSeed, vmKey } from '../../src/tokens/index.js';
import { example, freePort, roam, start, tmpdir, until, type Running } from '../helpers.js';

function echo(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    let got = '';
    const t = setTimeout(() => (s.destroy(), reject(new Error(`no echo on ${port}`))), 5000);
    s.on('data', (d) => {
      got += d;
      if (!got.includes('\n')) return;
      clearTimeout(t);
      s.end();
      resolve(got.trim());
    });
    s.on('error', (e) => (clearTimeout(t), reject(e)));
  });
}

test(
  'a node with a 150-character --state folder serves VMs, and their control sockets answer',
  { timeout: 120_000 },
  async () => {
    const dir = tmpdir('long'),
      secret = randomBytes(32);
    const state = path.join(dir, 's'.repeat(Math.max(1, 150 - dir.length - 1)));
    assert.ok(state.length >= 150, state);
    fs.writeFileSync(path.join(dir, 'secret'), secret.toString('hex'), { mode: 0o600 });
    const seed = newSeed(),
      jobId = randomBytes(16),
      file = path.join(dir, 'job.token');
    const t = mintBootToken(
      {
        ...{ nodeId: 'n1', jobId, units: 1000, memoryMiB: 64, cpuShare: 100, ports: 1 },
        ...{ anchor: iterate(seed, 2000), payment: iterate(seed, 1000), lifetimeS: 3600 },
        loaderSha256: Buffer.from(loaderHash(), 'hex'),
        expiry: Math.floor(Date.now() / 1000) + 600,
      },
      secret,
    );
    fs.writeFileSync(file, t);
    fs.writeFileSync(`${file}.key`, vmKey(secret, jobId), { mode: 0o600 });
    let node: Running | undefined;
    try {
      node = start([
        ...['node', '--id', 'n1', '--secret-file', path.join(dir, 'secret')],
        ...['--listen', '127.0.0.1:0', '--state', state, '--warm', '1'],
      ]);
      node.vmId.catch(() => {});
      await until(() => /udp:\/\/\S+/.test(node!.stdout()), `the node: ${node.stderr()}`, 30_000);
      const addr = /udp:\/\/(\S+)/.exec(node.stdout())![1];
      const b = await roam(['boot', file, '--node', addr]);
      const m = /vm (vm-[0-9a-f]{12}) cstrap (\S+)/.exec(b.stdout);
      assert.ok(m, b.stdout + b.stderr);
      const port = await freePort();
      const up = await roam([
        ...['run', '--to', m[2], '--key', `${file}.key`],
        ...['--tcplisten', `127.0.0.1:${port}`, example('echo-server')],
      ]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(await echo(port, 'long'), 'echo 1: long');

      const ps = await roam(['ps', '--node', state, '--json']);
      assert.equal(ps.code, 0, ps.stderr);
      const listed = JSON.parse(ps.stdout) as { id: string; socket?: string }[];
      // The registry (and the socket beside it) is in the VM's folder, past the limit.
      const vmHome = path.join(state, m[1]);
      const vm = listed.find((v) => v.socket?.startsWith(vmHome));
      assert.ok(vm, ps.stdout);
      const sock = fs.readdirSync(path.join(vmHome, 'vms')).find((f) => f.endsWith('.sock'));
      assert.ok(sock, 'the socket is in the VM folder');
      assert.ok(path.join(vmHome, 'vms', sock).length > 107);
      assert.equal(fs.statSync(path.join(vmHome, 'vms', sock)).mode & 0o777, 0o600);
      assert.equal(fs.statSync(path.join(vmHome, 'vms')).mode & 0o777, 0o700);

      // A control request through that socket: the owner checkpoints the VM (which writes the
      // file itself, so into its own folder: the only one it may write).
      const out = path.join(vmHome, 'cp.roam');
      const cp = await roam(['checkpoint', vm.id, '-o', out], {
        env: { ROAM_HOME: vmHome },
      });
      assert.equal(cp.code, 0, cp.stderr);
      assert.ok(fs.statSync(out).size > 0);
      assert.equal(await echo(port, 'still'), 'echo 2: still', 'it serves on after the checkpoint');
    } finally {
      node?.proc.kill('SIGKILL');
      await node?.exited;
    }
  },
);
