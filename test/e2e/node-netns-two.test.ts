// Two `roam node --netns` daemons on one host (as root). Each used to replace the
// one nftables table `ip roam` at start-up, so the second dropped the first's
// published ports. Now each has its own table and namespaces, named from its
// --state folder: a VM on each serves on its published port, one daemon stops
// (its table and namespaces go with it) and the other's VM still serves; a
// daemon killed with -9 and started again replaces only what was its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { netnsProblem, netTag } from '../../src/host/netns.js';
import { loaderHash } from '../../src/migrate/loader.js';
import { iterate, mintBootToken, newSeed, vmKey } from '../../src/tokens/index.js';
import { example, freePort, roam, start, tmpdir, until, type Running } from '../helpers.js';

const skip =
  process.getuid?.() !== 0 ? 'needs root (network namespaces)' : netnsProblem('127.0.0.1') || false;

const tables = () => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
const namespaces = () => (fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []);

function echo(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    let got = '';
    const t = setTimeout(() => (s.destroy(), resolve(`timeout: "${got}"`)), 5000);
    s.on('data', (d) => {
      got += d;
      if (!got.includes('\n')) return;
      clearTimeout(t);
      s.end();
      resolve(got.trim());
    });
    s.on('error', (e: NodeJS.ErrnoException) => (clearTimeout(t), resolve(e.code ?? 'error')));
  });
}

function token(dir: string, secret: Buffer, name: string): string {
  const seed = newSeed(),
    jobId = randomBytes(16);
  const t = mintBootToken(
    {
      ...{ nodeId: 'n1', jobId, units: 1000, memoryMiB: 64, cpuShare: 100, ports: 1 },
      ...{ anchor: iterate(seed, 2000), payment: iterate(seed, 1000), lifetimeS: 3600 },
      loaderSha256: Buffer.from(loaderHash(), 'hex'),
      expiry: Math.floor(Date.now() / 1000) + 600,
    },
    secret,
  );
  const file = path.join(dir, `${name}.token`);
  fs.writeFileSync(file, t);
  fs.writeFileSync(`${file}.key`, vmKey(secret, jobId), { mode: 0o600 });
  return file;
}

test(
  'two --netns daemons on one host: each keeps its own table, and one stopping leaves the other serving',
  { skip, timeout: 180_000 },
  async () => {
    const dir = tmpdir('netns2'),
      secret = randomBytes(32);
    fs.writeFileSync(path.join(dir, 'secret'), secret.toString('hex'), { mode: 0o600 });
    const states = [path.join(dir, 'a'), path.join(dir, 'b')],
      tags = states.map(netTag);
    assert.notEqual(tags[0], tags[1]);
    const daemon = async (state: string) => {
      const n = start([
        ...['node', '--netns', '--id', 'n1', '--secret-file', path.join(dir, 'secret')],
        ...['--listen', '127.0.0.1:0', '--state', state, '--warm', '1'],
      ]);
      n.vmId.catch(() => {});
      await until(() => /udp:\/\/\S+/.test(n.stdout()), `the node: ${n.stderr()}`, 30_000);
      return { n, addr: /udp:\/\/(\S+)/.exec(n.stdout())![1] };
    };
    const nodes: Running[] = [];
    try {
      const a = await daemon(states[0]);
      nodes.push(a.n);
      const b = await daemon(states[1]);
      nodes.push(b.n);
      for (const t of tags) assert.match(tables(), new RegExp(`table ip roam_${t}\\b`));

      // A VM on each, its program's port published.
      const ports: number[] = [];
      for (const [i, d] of [a, b].entries()) {
        const file = token(dir, secret, `t${i}`);
        const booted = await roam(['boot', file, '--node', d.addr]);
        const m = /vm (vm-[0-9a-f]{12}) cstrap (\S+)/.exec(booted.stdout);
        assert.ok(m, booted.stderr);
        const port = await freePort();
        ports.push(port);
        const up = await roam([
          ...['run', '--to', m[2], '--key', `${file}.key`],
          ...['--tcplisten', `127.0.0.1:${port}`, example('echo-server')],
        ]);
        assert.equal(up.code, 0, up.stderr);
        await until(
          () => d.n.stderr().includes(`${m[1]}: published port ${port}`),
          `published: ${d.n.stderr()}`,
          20_000,
        );
      }
      assert.equal(await echo(ports[0], 'a'), 'echo 1: a', "the first daemon's VM");
      assert.equal(await echo(ports[1], 'b'), 'echo 1: b', "the second daemon's VM");

      // The first stops: its VM suspends, its table and namespaces go; the second's VM serves on.
      a.n.proc.kill('SIGTERM');
      assert.equal(await a.n.exited, 0, a.n.stderr());
      await until(
        () => !namespaces().some((ns) => ns.startsWith(`roam-${tags[0]}-`)),
        `the first daemon's namespaces gone: ${namespaces().join(' ')}`,
        20_000,
      );
      assert.doesNotMatch(tables(), new RegExp(`roam_${tags[0]}\\b`));
      assert.match(tables(), new RegExp(`table ip roam_${tags[1]}\\b`));
      assert.equal(await echo(ports[1], 'b again'), 'echo 2: b again');

      // The second, killed with -9, leaves its table and namespaces; its next start replaces its
      // own table and removes its warm VM's namespace (no job owns it), not the first's names.
      // The job's VM and a warm one (the pool refills a moment after a boot).
      const own = () => namespaces().filter((ns) => ns.startsWith(`roam-${tags[1]}-`));
      await until(() => own().length >= 2, `a warm VM's namespace: ${own().join(' ')}`, 20_000);
      const warm = own();
      b.n.proc.kill('SIGKILL');
      await b.n.exited;
      const a2 = await daemon(states[0]); // the first again, while the second is dead
      nodes.push(a2.n);
      assert.match(tables(), new RegExp(`table ip roam_${tags[1]}\\b`), 'not touched by another');
      const b2 = await daemon(states[1]);
      nodes.push(b2.n);
      const left = namespaces().filter((ns) => ns.startsWith(`roam-${tags[1]}-`));
      assert.equal(
        left.filter((ns) => warm.includes(ns)).length,
        1,
        `only the job's VM's namespace is kept (its VM suspends): ${left.join(' ')}`,
      );
      assert.equal(
        (tables().match(new RegExp(`table ip roam_${tags[1]}\\b`, 'g')) ?? []).length,
        1,
      );
    } finally {
      for (const n of nodes) n.proc.kill('SIGKILL');
      await Promise.all(nodes.map((n) => n.exited));
      for (const t of tags) {
        for (const ns of namespaces())
          if (ns.startsWith(`roam-${t}-`)) spawnSync('ip', ['netns', 'del', ns]);
        spawnSync('nft', ['delete', 'table', 'ip', `roam_${t}`]);
      }
    }
  },
);
