// bench/control: the pull-only control plane (issue 15, thesis 8.3).
//  1. Description change -> every watcher has fetched it: Pulse against polling
//     at the same load (one datagram per renewal vs one HTTP request per poll,
//     the same interval), p50/p99, and messages per change per node. Watchers
//     are the agent's fetch-and-subscribe half (no VMs), in this process, against
//     a real control service (SQLite), broker and `roam pulse` process.
//  2. The rendezvous server, a `roam pulse` process on one core: subscriptions
//     held, and events forwarded per second.
//  3. Submission of 8 instances on 3 nodes -> all running and answering, in
//     real processes (broker, rendezvous, control, 3 node daemons, 3 agents).
// Usage: npm run bench:control -- [--json FILE] [--quick]
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { broker } from '../test/broker-fixtures.js';
import { startControl } from '../src/control/server.js';
import { ControlClient } from '../src/control/client.js';
import { SqliteStore } from '../src/control/store.js';
import { newEvent, release, Subscriber } from '../src/pulse/client.js';
import { decodeDatagram, encodeRequest } from '../src/pulse/wire.js';
import { cluster, echo, status, submit, upload } from '../test/cluster-fixtures.js';
import { example, freePort, sleep } from '../test/helpers.js';
import { serve } from '../test/cluster-fixtures.js';
import { jsonPath, table, writeJson } from './util.js';

const quick = process.argv.includes('--quick');
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/** One node's view of the control service: fetch on an event (Pulse) or every interval (poll). */
class Watcher {
  version = 0;
  requests = 0;
  datagrams = 0;
  seen = new Map<number, number>();
  private sub: Subscriber | null = null;
  private timer: NodeJS.Timeout | undefined;
  private stopPhase = (): void => undefined;
  constructor(
    private readonly c: ControlClient,
    private readonly mode: 'pulse' | 'poll',
    private readonly intervalMs: number,
  ) {}
  async start(): Promise<void> {
    if (this.mode === 'pulse') {
      this.sub = new Subscriber({ renewMs: this.intervalMs });
      this.sub.on('event', () => void this.fetch());
    } else {
      // Nodes poll at independent phases, as real ones do.
      const phase = setTimeout(() => {
        this.timer = setInterval(() => void this.fetch(), this.intervalMs);
      }, Math.random() * this.intervalMs);
      this.stopPhase = () => clearTimeout(phase);
    }
    await this.fetch();
  }
  async fetch(): Promise<void> {
    this.requests++;
    const f = await this.c.node(this.version || undefined);
    if (!f) return;
    this.version = f.view.version;
    if (!this.seen.has(this.version)) this.seen.set(this.version, performance.now());
    if (this.sub) this.sub.watch(Buffer.from(f.h, 'hex'), f.rendezvous);
  }
  stop(): void {
    if (this.sub) this.datagrams = this.sub.stats.sent + this.sub.stats.received;
    this.sub?.close();
    this.stopPhase();
    clearInterval(this.timer);
  }
}

async function changeLatency(nodes: number, changes: number, intervalMs: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-bench-control-'));
  const rv = await serve(['pulse', '--listen', '127.0.0.1:0'], /listening on (\S+)/);
  const b = await broker({ chainLength: 100 });
  const bc = await b.customer('alice', 1e9); // the control service buys on this account
  const ids = Array.from({ length: nodes }, (_, i) => `n${i}`);
  for (const n of ids) await b.client.enrollNode(n);
  let committed = 0;
  const ctl = await startControl(new SqliteStore(path.join(dir, 'control.db')), {
    onCommit: () => (committed = performance.now()),
    broker: bc,
    rendezvous: [rv.match],
    units: 1,
  });
  const admin = new ControlClient(ctl.url, ctl.adminKey!);
  const alice = new ControlClient(ctl.url, (await admin.addCustomer('alice')).key);
  const keys = [];
  for (const n of ids) keys.push((await admin.addNode(n)).key);
  const { sha256 } = await alice.putProgram(fs.readFileSync(example('echo-server')));
  const out: Record<string, unknown> = {};
  for (const mode of ['pulse', 'poll'] as const) {
    const ws = keys.map((k) => new Watcher(new ControlClient(ctl.url, k), mode, intervalMs));
    for (const w of ws) await w.start();
    const lat: number[] = [];
    const t0 = performance.now();
    for (let c = 0; c < changes; c++) {
      // Every node's description changes: one instance per node, a new argument each time.
      const r = await alice.submit({
        name: `w-${mode}`,
        programs: [{ sha256, args: [`${c}`] }],
        instances: nodes,
        memoryMiB: 16,
        ports: [],
        placement: { nodes: ids },
      });
      void r;
      const at = committed; // latency counts from the commit: the change exists from then on
      const deadline = performance.now() + intervalMs * 3;
      const want = await Promise.all(
        keys.map((k) => new ControlClient(ctl.url, k).node().then((f) => f!.view.version)),
      );
      while (performance.now() < deadline && !ws.every((w, i) => w.version >= want[i]))
        await sleep(2);
      for (const [i, w] of ws.entries()) {
        const seen = w.seen.get(want[i]);
        if (seen !== undefined) lat.push(seen - at);
      }
      await sleep(intervalMs * 0.37 + Math.random() * intervalMs); // changes at random phases of the poll
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const w of ws) w.stop();
    const requests = ws.reduce((a, w) => a + w.requests, 0);
    const datagrams = ws.reduce((a, w) => a + w.datagrams, 0);
    out[mode] = {
      p50Ms: pct(lat, 50),
      p99Ms: pct(lat, 99),
      samples: lat.length,
      missed: nodes * changes - lat.length,
      httpPerChangePerNode: requests / changes / nodes,
      datagramsPerChangePerNode: datagrams / changes / nodes,
      seconds,
    };
  }
  await ctl.close();
  await b.close();
  rv.r.proc.kill();
  fs.rmSync(dir, { recursive: true, force: true });
  return out as Record<
    'pulse' | 'poll',
    {
      p50Ms: number;
      p99Ms: number;
      samples: number;
      missed: number;
      httpPerChangePerNode: number;
      datagramsPerChangePerNode: number;
    }
  >;
}

/** Subscriptions a `roam pulse` process holds, and releases it forwards per second. */
async function rendezvousRate(subs: number, events: number) {
  const rv = await serve(
    [
      'pulse',
      '--listen',
      '127.0.0.1:0',
      '--max-per-address',
      String(subs),
      '--max-subscriptions',
      String(subs * 2),
    ],
    /listening on (\S+)/,
  );
  const [host, port] = [rv.match.split(':')[0], Number(rv.match.split(':')[1])];
  const sock = dgram.createSocket('udp4');
  sock.setMaxListeners(0);
  await new Promise<void>((r) => sock.bind(0, () => r()));
  sock.setRecvBufferSize(16 << 20);
  let acks = 0;
  let got = 0;
  let lastAck = 0;
  let lastEvent = 0;
  sock.on('message', (m) => {
    const d = decodeDatagram(m);
    if (d?.reply) {
      acks++;
      lastAck = performance.now();
    } else if (d?.kind === 'event') {
      got++;
      lastEvent = performance.now();
    }
  });
  /** Until nothing more has come for a second. */
  const settle = async (last: () => number) => {
    while (performance.now() - Math.max(last(), t0) < 1000) await sleep(50);
  };
  const evs = Array.from({ length: subs }, () => newEvent());
  let t0 = performance.now();
  // In windows, so that the socket buffers are not what is measured.
  for (let i = 0; i < subs;) {
    const end = Math.min(subs, i + 256);
    for (; i < end; i++)
      sock.send(encodeRequest({ kind: 'subscribe', id: i & 0xffff, value: evs[i].h }), port, host);
    while (acks < i - 512) await sleep(1);
  }
  await settle(() => lastAck);
  const subSeconds = (lastAck - t0) / 1000;
  const held = acks;
  const t1 = performance.now();
  t0 = t1;
  const n = Math.min(events, subs);
  for (let i = 0; i < n;) {
    const end = Math.min(n, i + 64);
    await Promise.all(
      evs.slice(i, end).map((e) => release(e.s, [rv.match], { tries: 2, timeoutMs: 500 })),
    );
    i = end;
  }
  await settle(() => lastEvent);
  const evSeconds = (lastEvent - t1) / 1000;
  sock.close();
  rv.r.proc.kill();
  return { held, subscribePerS: held / subSeconds, forwarded: got, forwardedPerS: got / evSeconds };
}

/** Submit 8 instances on 3 nodes; time until every one runs and answers. */
async function submitToRunning() {
  const c = await cluster(3, ['--poll', '600', '--renew', '5']);
  try {
    const sha = await upload(c);
    const base = await freePort();
    const t0 = performance.now();
    await submit(c, {
      name: 'web',
      programs: [{ sha256: sha, args: [] }],
      instances: 8,
      memoryMiB: 64,
      ports: [`127.0.0.1:${base}`],
      placement: { nodes: ['n1', 'n2', 'n3'] },
    });
    let firstMs = NaN;
    for (;;) {
      const s = await status(c, 'web');
      const running = s.instances.filter((i) => i.state === 'running').length;
      if (running > 0 && Number.isNaN(firstMs)) firstMs = performance.now() - t0;
      if (running === 8) {
        const ans = await Promise.all(Array.from({ length: 8 }, (_, i) => echo(base + i, 'x')));
        if (ans.every((a) => a?.endsWith(': x'))) break;
      }
      if (performance.now() - t0 > 300_000)
        throw new Error('8 instances did not come up in 5 minutes');
      await sleep(100);
    }
    return { firstRunningMs: firstMs, allRunningMs: performance.now() - t0 };
  } finally {
    await c.stop();
  }
}

const nodes = quick ? 8 : 16;
const interval = quick ? 1000 : 2000;
const lat = await changeLatency(nodes, quick ? 6 : 12, interval);
console.log(
  `\nDescription change -> every one of ${nodes} nodes has fetched it (renewal = poll interval = ${interval} ms)`,
);
console.log(
  table(
    (['pulse', 'poll'] as const).map((m) => ({
      mode: m,
      'p50 ms': lat[m].p50Ms,
      'p99 ms': lat[m].p99Ms,
      'HTTP req / change / node': lat[m].httpPerChangePerNode,
      'datagrams / change / node': lat[m].datagramsPerChangePerNode,
      missed: lat[m].missed,
    })),
  ),
);
console.log(`poll p50 / Pulse p50: ${(lat.poll.p50Ms / lat.pulse.p50Ms).toFixed(1)}x`);
const rr = await rendezvousRate(quick ? 20_000 : 100_000, quick ? 2_000 : 10_000);
console.log('\nRendezvous server (one roam pulse process)');
console.log(
  table([
    {
      'subscriptions held': rr.held,
      'subscribes/s': rr.subscribePerS,
      'events forwarded': rr.forwarded,
      'forwarded/s': rr.forwardedPerS,
    },
  ]),
);
const sr = await submitToRunning();
console.log('\nSubmission of 8 instances on 3 nodes -> all running and answering');
console.log(
  table([{ 'first running ms': sr.firstRunningMs, 'all 8 running ms': sr.allRunningMs }]),
);
const file = jsonPath('control');
writeJson(file, {
  when: new Date().toISOString(),
  cores: os.cpus().length,
  nodes,
  intervalMs: interval,
  change: lat,
  rendezvous: rr,
  submit: sr,
  hypercube: 'measured by bench/hypercube.ts (npm run bench:hypercube)',
});
console.log(`\nwrote ${file}`);
// The cluster's VMs suspend themselves once their daemons are gone: let them finish before the folders go.
await sleep(5000);
process.exit(0);
