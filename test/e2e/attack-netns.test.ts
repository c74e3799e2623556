// Issue 13, attack 5, as root with `roam node --netns`: a token with --ports 0
// still listened, and a VM reached the host's loopback services, the broker and
// another tenant's server. Now each VM has a network namespace of its own. The
// attacker here is JavaScript in the VM's namespace (the network reach of a VM
// process whose guest kernel has been subverted: it calls net.listen and
// net.connect itself); the tenant's stock programs are uploaded as anyone would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { netnsProblem, netTag } from '../../src/host/netns.js';
import { loaderHash } from '../../src/migrate/loader.js';
import { iterate, mintBootToken, newSeed, vmKey } from '../../src/tokens/index.js';
import { example, freePort, roam, start, tmpdir, track, until, type Running } from '../helpers.js';

const skip =
  process.getuid?.() !== 0 ? 'needs root (network namespaces)' : netnsProblem('127.0.0.1') || false;

const sh = (...a: string[]) => execFileSync(a[0], a.slice(1), { stdio: 'pipe' });
// A VM's /30 as its namespace shows it: host 2 is its eth0, host 1 its gateway (the host's
// link, named rvSLOT).
const netOf = (ns: string) => {
  const out = execFileSync('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'eth0'], {
    encoding: 'utf8',
  });
  const n = Number(
    /inet (\d+)\.(\d+)\.(\d+)\.(\d+)\/30/
      .exec(out)!
      .slice(1)
      .reduce((a, b) => a * 256 + Number(b), 0),
  );
  const ip = (h: number) => [24, 16, 8, 0].map((sh) => ((n - 2 + h) >>> sh) & 255).join('.');
  return {
    gw: ip(1),
    addr: ip(2),
    link: `rv${((n - 2 - 0x64400000) / 4).toString(16).padStart(5, '0')}`,
  };
};

/** Can `port` on `host` be connected to from here within `ms`? */
const reach = (host: string, port: number, ms = 1500) =>
  new Promise<string>((resolve) => {
    const s = net.connect(port, host);
    const t = setTimeout(() => (s.destroy(), resolve('timeout')), ms);
    s.once('connect', () => (clearTimeout(t), s.destroy(), resolve('connected')));
    s.once('error', (e: NodeJS.ErrnoException) => (clearTimeout(t), resolve(e.code ?? 'error')));
  });

function token(dir: string, secret: Buffer, name: string, ports: number): string {
  const seed = newSeed(),
    jobId = randomBytes(16);
  const t = mintBootToken(
    {
      ...{ nodeId: 'n1', jobId, units: 1000, memoryMiB: 64, cpuShare: 100, ports },
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

// The attacker's script, run in a VM's namespace: it prints what it reached.
const ATTACK = `
const net = require('net'), [listenPort, ...targets] = process.argv.slice(1);
net.createServer((s) => s.end('hijacked\\n')).listen(Number(listenPort), '0.0.0.0');
const results = {};
Promise.all(targets.map((t) => new Promise((r) => {
  const [h, p] = t.split(':'), s = net.connect(Number(p), h);
  const done = (v) => { results[t] ??= v; s.destroy(); r(); };
  const timer = setTimeout(() => done('timeout'), 1500);
  s.once('data', (d) => (clearTimeout(timer), done('got ' + String(d).trim())));
  s.once('connect', () => setTimeout(() => (clearTimeout(timer), done('connected')), 300));
  s.once('error', (e) => (clearTimeout(timer), done(e.code)));
}))).then(() => { console.log(JSON.stringify(results)); setTimeout(() => process.exit(0), 10000); });
`;

test(
  'as root with --netns, a VM reaches the outside only and publishes at most its ports',
  { skip, timeout: 180_000 },
  async () => {
    const dir = tmpdir('netns'),
      secret = randomBytes(32),
      out = `roamt-out-${process.pid}`,
      veth = `rot${process.pid % 1e6}`,
      tag = netTag(path.join(dir, 'vms'));
    fs.writeFileSync(path.join(dir, 'secret'), secret.toString('hex'), { mode: 0o600 });
    // "The outside network": a namespace of its own with a server in it (198.18.0.0/15 is for tests).
    sh('ip', 'netns', 'add', out);
    let node: Running | undefined;
    const host = net.createServer((s) => s.end('host service\n')); // the broker, or any host service
    try {
      sh('ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', out);
      sh('ip', 'addr', 'add', '198.18.0.1/30', 'dev', veth);
      sh('ip', 'link', 'set', veth, 'up');
      sh('ip', '-n', out, 'addr', 'add', '198.18.0.2/30', 'dev', 'eth0');
      sh('ip', '-n', out, 'link', 'set', 'eth0', 'up');
      const outside = track(
        spawn('nsenter', [
          `--net=/run/netns/${out}`,
          process.execPath,
          '-e',
          "require('net').createServer((s) => s.end('outside\\n')).listen(9000, '0.0.0.0')",
        ]),
      );
      await new Promise<void>((r) => host.listen(0, '0.0.0.0', r));
      const hostPort = (host.address() as net.AddressInfo).port;

      node = start([
        'node',
        '--netns',
        '--id',
        'n1',
        '--secret-file',
        path.join(dir, 'secret'),
        '--listen',
        '127.0.0.1:0',
        '--state',
        path.join(dir, 'vms'),
        '--warm',
        '2',
      ]);
      node.vmId.catch(() => {});
      await until(() => /udp:\/\/\S+/.test(node!.stdout()), `the node: ${node.stderr()}`, 30_000);
      assert.match(node.stderr(), /isolated: the network \(each VM in a namespace of its own/);
      assert.doesNotMatch(node.stderr(), /NOT ISOLATED: the network/);
      const addr = /udp:\/\/(\S+)/.exec(node.stdout())![1];

      // Tenant A: ports 1, two listeners. Tenant B: ports 0, one listener.
      const boot = async (file: string) => {
        const b = await roam(['boot', file, '--node', addr]);
        const m = /vm (vm-[0-9a-f]{12}) cstrap (\S+)/.exec(b.stdout);
        assert.ok(m, b.stderr);
        return { vmId: m[1], cstrap: m[2], key: `${file}.key` };
      };
      const a = await boot(token(dir, secret, 'a', 1)),
        b = await boot(token(dir, secret, 'b', 0));
      assert.match(a.cstrap, /^127\.0\.0\.1:\d+$/, 'the upload port is published on --vm-host');
      const [a1, a2, b1, evil] = await Promise.all([
        freePort(),
        freePort(),
        freePort(),
        freePort(),
      ]);
      for (const [vm, ports] of [
        [a, [a1, a2]],
        [b, [b1]],
      ] as const) {
        const up = await roam([
          'run',
          '--to',
          vm.cstrap,
          '--key',
          vm.key,
          ...ports.flatMap((p) => ['--tcplisten', `127.0.0.1:${p}`]),
          example('echo-server'),
        ]);
        assert.equal(up.code, 0, up.stderr);
      }
      await until(
        () => node!.stderr().includes(`${a.vmId}: published port ${a1}`),
        `A's port: ${node.stderr()}`,
        20_000,
      );
      await until(
        () => node!.stderr().includes(`${b.vmId}: port ${b1} not published`),
        `B refused: ${node.stderr()}`,
        20_000,
      );
      // Once arrived, each VM told the daemon on fd 3 that its upload port may go: it is
      // published no more (only the program port A is allowed stays in the map).
      for (const vm of [a, b]) {
        const port = vm.cstrap.split(':')[1];
        await until(
          () => node!.stderr().includes(`${vm.vmId}: upload port ${port} unpublished`),
          `${vm.vmId}'s upload port unpublished: ${node.stderr()}`,
          20_000,
        );
      }
      const pub = execFileSync('nft', ['list', 'map', 'ip', `roam_${tag}`, 'pub'], {
        encoding: 'utf8',
      });
      const published = [...pub.matchAll(/127\.0\.0\.1 \. (\d+) :/g)].map((m) => Number(m[1]));
      assert.ok(published.includes(a1), pub);
      for (const vm of [a, b]) assert.ok(!published.includes(Number(vm.cstrap.split(':')[1])), pub);
      assert.equal(await reach('127.0.0.1', a1), 'connected', "A's one port is reachable");
      assert.equal(await reach('127.0.0.1', a2), 'ECONNREFUSED', "A's second port is not: ports 1");
      assert.equal(await reach('127.0.0.1', b1), 'ECONNREFUSED', 'ports 0: no port at all');
      assert.match(
        node.stderr(),
        new RegExp(`${a.vmId}: port ${a2} not published: its token allows 1`),
      );

      // The attacker in B's namespace: listens itself, and tries the host, the broker, A, the world.
      const na = netOf(`roam-${tag}-${a.vmId}`),
        nb = netOf(`roam-${tag}-${b.vmId}`);
      assert.notEqual(na.addr, nb.addr);
      const targets = [
        `127.0.0.1:${hostPort}`, // the host's loopback? (its own loopback: nothing there)
        `${nb.gw}:${hostPort}`, // the host through its gateway
        `${nb.gw}:${a1}`, // A's published port, through the host
        `${na.addr}:${a1}`, // A directly
        `198.18.0.1:${hostPort}`, // the host's other address
        '198.18.0.2:9000', // the outside network
      ];
      const attacker = track(
        spawn('nsenter', [
          `--net=/run/netns/roam-${tag}-${b.vmId}`,
          process.execPath,
          '-e',
          ATTACK,
          '--',
          String(evil),
          ...targets,
        ]),
      );
      let said = '';
      attacker.stdout!.on('data', (d: Buffer) => (said += d.toString()));
      attacker.stderr!.on('data', (d: Buffer) => (said += d.toString()));
      await until(() => said.includes('\n'), 'the attacker to report', 20_000);
      const r = { stdout: said };
      const got = JSON.parse(r.stdout.split('\n')[0]) as Record<string, string>;
      assert.deepEqual(got, {
        [targets[0]]: 'ECONNREFUSED',
        [targets[1]]: 'timeout',
        [targets[2]]: 'timeout',
        [targets[3]]: 'timeout',
        [targets[4]]: 'timeout',
        [targets[5]]: 'got outside',
      });
      // No IPv6 on its link (the rules are IPv4): no link-local address of the host to try.
      const v6 = (ns: string[]) =>
        execFileSync('ip', [...ns, '-6', 'addr', 'show', 'scope', 'link'], { encoding: 'utf8' });
      assert.equal(v6(['-n', `roam-${tag}-${b.vmId}`]).trim(), '');
      assert.match(
        execFileSync('ip', ['-d', 'link', 'show', nb.link], { encoding: 'utf8' }),
        /veth/,
      );
      assert.doesNotMatch(v6([]), new RegExp(nb.link));
      // What it listened on is reached by no one: not on the host, not at its own address.
      assert.equal(await reach('127.0.0.1', evil), 'ECONNREFUSED');
      assert.equal(await reach(nb.addr, evil), 'timeout');
      attacker.kill();
      outside.kill();
    } finally {
      host.close();
      node?.proc.kill('SIGKILL');
      await node?.exited;
      for (const d of fs.existsSync(path.join(dir, 'vms'))
        ? fs.readdirSync(path.join(dir, 'vms'))
        : [])
        if (d.startsWith('vm-')) spawnSync('ip', ['netns', 'del', `roam-${tag}-${d}`]);
      spawnSync('ip', ['netns', 'del', out]);
      spawnSync('nft', ['delete', 'table', 'ip', `roam_${tag}`]);
    }
  },
);
