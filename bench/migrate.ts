// bench/migrate: live migration between real processes, over loopback and (as
// root, with `ip`/`tc`) over a veth pair between two network namespaces shaped
// to 1 Gbit/s and 100 Mbit/s.
//  workloads: an idle 256 MiB guest (filled its memory, sleeps), a 256 MiB guest
//  dirtying flat out (large working set), a game server with 8 clients sending
//  every 5 ms (their largest reply gap), and a guest that dirties faster than any
//  link (converges only by throttling).
// Per run: downtime (freeze -> first instruction at the destination), source
// freeze, total time against what the link allows, the pre-copy rounds. Writes
// JSON plus two SVG charts (per-round WSS vs snapshot buffer, thesis Figure 6.5;
// the throttled rounds of the dirtier, Figure 6.6) next to it.
// Usage: npm run bench:migrate -- [--json FILE] [--runs N] [--quick] [--only idle,wss,game,dirtier,hypercube]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { table, writeJson, jsonPath } from './util.js';
import { lineChart, type Band } from './svg.js';
import { cleanup, setup, shape, type NsPair } from './netns.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const ROAM = path.join(root, 'bin/roam.js');
const SELF = fileURLToPath(import.meta.url);
const HOME = process.env.ROAM_BENCH_HOME ?? path.join(os.tmpdir(), 'roam-bench-home');
const ex = (n: string) => path.join(root, 'examples', `${n}.wasm`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Game clients: a child process (so that it can run inside a network namespace).
// `migrate.js --clients N ADDR[,ADDR...]`; stdin: "mark" (start measuring gaps),
// "stop"; stdout: a status line every 50 ms, a final line at the end (JSON).

interface ClientStats {
  seq: number;
  gap: number;
  gapBefore: number;
  reconnects: number;
  errors: number;
  /** Inside the largest gap, ms after the last reply before it: connection cut seen, reconnected (after how many refused attempts). */
  gapDetail: {
    cutMs: number | null;
    connectedMs: number | null;
    attempts: number;
    startAt?: number;
    freezeMs?: number;
  } | null;
}

async function clientsChild(n: number, addrs: string[]): Promise<void> {
  let stopping = false,
    marked = false;
  const stats: ClientStats[] = Array.from({ length: n }, () => ({
    seq: 0,
    gap: 0,
    gapBefore: 0,
    reconnects: 0,
    errors: 0,
    gapDetail: null,
  }));
  const connect = (addr: string) =>
    new Promise<net.Socket>((res, rej) => {
      const i = addr.lastIndexOf(':');
      const s = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i));
      const t = setTimeout(() => {
        s.destroy();
        rej(new Error('connect timeout'));
      }, 1000);
      s.once('connect', () => {
        clearTimeout(t);
        res(s);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        rej(e);
      });
    });
  const one = async (id: number) => {
    const st = stats[id];
    let h = 0x811c9dc5,
      ai = 0,
      last = -1,
      lastSend = 0;
    let cutAt: number | null = null,
      connAt: number | null = null,
      attempts = 0;
    while (!stopping) {
      let sock: net.Socket;
      try {
        sock = await connect(addrs[ai % addrs.length]);
        if (cutAt !== null) connAt = performance.now();
      } catch {
        ai++;
        attempts++;
        await sleep(1);
        continue;
      }
      sock.setNoDelay(true);
      sock.on('error', () => {});
      let buf = '',
        closed = false,
        wake: (() => void) | null = null;
      sock.on('data', (d) => {
        buf += d;
        wake?.();
      });
      sock.on('close', () => {
        closed = true;
        wake?.();
      });
      const line = async (ms: number): Promise<string | null> => {
        const t0 = performance.now();
        for (;;) {
          const nl = buf.indexOf('\n');
          if (nl >= 0) {
            const l = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            return l;
          }
          if (closed || performance.now() - t0 > ms) return null;
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 50);
          });
          wake = null;
        }
      };
      try {
        while (!stopping) {
          const wait = lastSend + 5 - performance.now();
          if (wait > 0) await sleep(wait);
          const next = st.seq + 1;
          lastSend = performance.now();
          sock.write(`${id} ${next}\n`);
          const r = await line(3000);
          if (r === null) break; // cut: reconnect (to the next address) and resend
          const want = (Math.imul((h ^ next) >>> 0, 16777619) ^ id) >>> 0;
          const [rs, rh] = r.split(' ');
          if (Number(rs) !== next || rh !== want.toString(16).padStart(8, '0')) {
            st.errors++;
            h = parseInt(rh, 16) >>> 0; // carry on from what the server says
          } else h = want;
          st.seq = next;
          const now = performance.now();
          if (last >= 0) {
            if (marked && now - last > st.gap) {
              st.gap = now - last;
              st.gapDetail = {
                cutMs: cutAt === null ? null : cutAt - last,
                connectedMs: connAt === null ? null : connAt - last,
                attempts,
                startAt: performance.timeOrigin + last,
              };
            } else if (!marked) st.gapBefore = Math.max(st.gapBefore, now - last);
          }
          last = now;
          cutAt = connAt = null;
          attempts = 0;
        }
      } finally {
        sock.destroy();
      }
      if (!stopping) {
        st.reconnects++;
        ai++;
        cutAt ??= performance.now();
      }
    }
  };
  const done = Promise.all(stats.map((_, i) => one(i)));
  const report = (type: string) =>
    process.stdout.write(JSON.stringify({ type, clients: stats }) + '\n');
  const timer = setInterval(() => report('status'), 50);
  readline.createInterface({ input: process.stdin }).on('line', (l) => {
    if (l.trim() === 'mark') marked = true;
    if (l.trim() === 'stop') stopping = true;
  });
  await new Promise<void>((r) => {
    const t = setInterval(() => {
      if (stopping) {
        clearInterval(t);
        r();
      }
    }, 10);
  });
  await done;
  clearInterval(timer);
  report('final');
  process.exit(0);
}

if (process.argv[2] === '--clients') {
  await clientsChild(Number(process.argv[3]), process.argv[4].split(','));
}

// ---------------------------------------------------------------------------
// Processes.

interface Proc {
  proc: ChildProcess;
  out(): string;
  err(): string;
  exited: Promise<number>;
  send(s: string): void;
}
const live = new Set<ChildProcess>();

function spawnNode(args: string[], ns?: string): Proc {
  const argv = ns ? ['netns', 'exec', ns, process.execPath, ...args] : args;
  const proc = spawn(ns ? 'ip' : process.execPath, argv, {
    env: { ...process.env, ROAM_HOME: HOME },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(proc);
  let out = '',
    err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  proc.stdin.on('error', () => {});
  const exited = new Promise<number>((r) =>
    proc.on('close', (code, sig) => {
      live.delete(proc);
      r(code ?? (sig ? 128 : 1));
    }),
  );
  return {
    proc,
    out: () => out,
    err: () => err,
    exited,
    send: (s) => {
      if (proc.exitCode === null) proc.stdin.write(s);
    },
  };
}
const roamProc = (args: string[], ns?: string) => spawnNode([ROAM, ...args], ns);

/** Ends a process this bench started: SIGTERM, then SIGKILL. */
async function end(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill('SIGTERM');
  const t = setTimeout(() => p.proc.kill('SIGKILL'), 2000);
  await p.exited;
  clearTimeout(t);
}
async function endAll(): Promise<void> {
  for (const c of [...live]) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  const t0 = Date.now();
  while (live.size > 0 && Date.now() - t0 < 3000) await sleep(20);
}
process.on('SIGINT', () => {
  for (const c of live) c.kill('SIGKILL');
  netnsCleanup();
  process.exit(130);
});

async function until(pred: () => boolean, what: string, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

// ---------------------------------------------------------------------------
// Links.

interface Link {
  name: string;
  /** Configured rate in bytes/s (tc), or null: use the migration's measured rate. */
  rate: number | null;
  srcNs?: string;
  dstNs?: string;
  /** --tcplisten host for the game server at the source. */
  listenHost: string;
  /** Addresses a cstrap listens on. */
  dstHost: string;
  /** A port for the game server and one for the cstrap. */
  port(): Promise<number>;
  /** Where game clients connect: the source, and after the cut the destination. */
  clientAddrs(port: number): string[];
}

const loopback: Link = {
  name: 'loopback',
  rate: null,
  listenHost: '127.0.0.1',
  dstHost: '127.0.0.1',
  port: () => freePort(),
  clientAddrs: (p) => [`127.0.0.1:${p}`],
};
let nsPort = 7400;
const veth = (name: string, rate: number): Link => ({
  name,
  rate,
  srcNs: 'roamA',
  dstNs: 'roamB',
  listenHost: '0.0.0.0',
  dstHost: '10.77.0.2',
  // Fresh namespaces: nothing else listens there; a new port per run avoids TIME_WAIT.
  port: async () => nsPort++,
  clientAddrs: (p) => [`10.77.0.1:${p}`, `10.77.0.2:${p}`],
});

const PAIR: NsPair = { a: 'roamA', b: 'roamB', prefix: '10.77.0' };
const netnsCleanup = (): void => cleanup(PAIR);
const netnsShape = (tcRate: string): void => shape(PAIR, tcRate);
/** Two namespaces joined by a veth pair; null if that works, else why not. */
const netnsSetup = (): Promise<string | null> => setup(PAIR, '1gbit');

// ---------------------------------------------------------------------------
// Workloads and one migration.

type Key = 'idle' | 'wss' | 'game' | 'gameloose' | 'dirtier';
/** `migrate`: extra `roam migrate` options (the game server asked for a tighter downtime). */
interface Workload {
  key: Key;
  name: string;
  mib: number;
  program: string;
  args: string[];
  ready: (out: string) => boolean;
  migrate?: string[];
}
const isGame = (k: Key): boolean => k === 'game' || k === 'gameloose';

const quick = process.argv.includes('--quick');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg >= 0 ? Math.max(1, Number(process.argv[runsArg + 1])) : 1;
const BIG = quick ? 64 : 256;
const DIRTY = quick ? 16 : 64;
const GAME_CLIENTS = 8;
// --only idle,wss,game,dirtier,hypercube: a subset of the workloads (for trying things out).
const onlyArg = process.argv.indexOf('--only');
const ONLY = onlyArg >= 0 ? process.argv[onlyArg + 1].split(',') : null;

const WORKLOADS: Record<Key, Workload> = {
  // Fills its memory (iteration 0), then sleeps far longer than the bench.
  idle: {
    key: 'idle',
    name: 'idle',
    mib: BIG,
    program: 'bigmem',
    args: [String(BIG), '1000000', '600000'],
    ready: (o) => o.includes('iter 0'),
  },
  wss: {
    key: 'wss',
    name: 'large WSS',
    mib: BIG,
    program: 'bigmem',
    args: [String(BIG), '1000000'],
    ready: (o) => o.includes('iter 1'),
  },
  game: {
    key: 'game',
    name: 'game server',
    mib: 4,
    program: 'game-server',
    args: [],
    ready: (o) => o.includes('listening'),
  },
  // The same with the thesis' 50 ms downtime budget instead of the default 20 ms:
  // the final copy may be 50 ms of link time, so the cleaner barely throttles
  // (what the tighter default costs the clients, and gains in downtime).
  gameloose: {
    key: 'gameloose',
    name: 'game server, --max-downtime 50',
    mib: 4,
    program: 'game-server',
    args: [],
    ready: (o) => o.includes('listening'),
    migrate: ['--max-downtime', '50'],
  },
  dirtier: {
    key: 'dirtier',
    name: 'dirtier',
    mib: DIRTY,
    program: 'dirtier',
    args: [String(DIRTY), '100000'],
    ready: (o) => o.includes('pass 20 '),
  },
};

interface Round {
  round: number;
  sent: number;
  postponed: number;
  wss: number;
  buffer: number;
  bytes: number;
  ms: number;
  throttled: Record<string, string>;
  rate?: number | null;
  compressing?: boolean;
}
interface MigrateJson {
  rounds: Round[];
  snapshotPages: number;
  totalMs: number;
  bytes: number;
  pagesSent: number;
  kernelBytes: number;
  freezeMs: number;
  downtimeMs: number | null;
  confirmMs: number;
  frozenAt?: number;
  timeline: Record<string, number>;
  linkRate: number | null;
  compressed: boolean;
}
interface RunRecord {
  workload: string;
  key: Key;
  link: string;
  run: number;
  memory_mib: number;
  args: string[];
  ok: boolean;
  error?: string;
  downtime_ms?: number | null;
  freeze_ms?: number;
  client_gap_ms?: number;
  client_gap_before_ms?: number;
  client_reconnects?: number;
  client_errors?: number;
  client_gap_detail?: ClientStats['gapDetail'];
  client_messages?: number;
  total_s?: number;
  stream_s?: number;
  bytes?: number;
  must_move_bytes?: number;
  link_rate?: number | null;
  link_rate_source?: string;
  link_limit_s?: number;
  ratio?: number;
  wire_s?: number;
  compressed?: boolean;
  rounds?: Array<{
    round: number;
    sent: number;
    postponed: number;
    wss: number;
    buffer: number;
    bytes: number;
    ms: number;
    throttled: Record<string, string>;
  }>;
  timeline?: Record<string, number>;
  confirm_ms?: number;
  snapshot_pages?: number;
  wall_s?: number;
}

async function migrateOnce(w: Workload, link: Link, run: number): Promise<RunRecord> {
  const rec: RunRecord = {
    workload: w.name,
    key: w.key,
    link: link.name,
    run,
    memory_mib: w.mib,
    args: w.args,
    ok: false,
  };
  const t0 = performance.now();
  const procs: Proc[] = [];
  try {
    // Port 0 on loopback (the cstrap picks a free one); a port of our own if that is refused.
    let dst = roamProc(
      ['cstrap', '--listen', `${link.dstHost}:${link.rate === null ? 0 : await link.port()}`],
      link.dstNs,
    );
    procs.push(dst);
    await until(
      () => /cstrap listening on (\S+)/.test(dst.err()) || dst.proc.exitCode !== null,
      'the cstrap to listen',
      30_000,
    );
    if (dst.proc.exitCode !== null && /port 0/.test(dst.err())) {
      dst = roamProc(['cstrap', '--listen', `${link.dstHost}:${await link.port()}`], link.dstNs);
      procs.push(dst);
      await until(
        () => /cstrap listening on (\S+)/.test(dst.err()) || dst.proc.exitCode !== null,
        'the cstrap to listen',
        30_000,
      );
    }
    const addr = /cstrap listening on (\S+)/.exec(dst.err())?.[1];
    if (!addr) throw new Error(`cstrap did not start: ${dst.err().trim()}`);

    const gport = isGame(w.key) ? await link.port() : 0;
    const runArgs = isGame(w.key) ? ['--tcplisten', `${link.listenHost}:${gport}`] : [];
    const src = roamProc(
      // `roam run PROGRAM ARGS...` hands everything after the program to it, a `--` too.
      ['run', ...runArgs, ex(w.program), ...w.args],
      link.srcNs,
    );
    procs.push(src);
    await until(
      () => /roam: vm [0-9a-f]+ running/.test(src.err()) || src.proc.exitCode !== null,
      'the VM to start',
      60_000,
    );
    const id = /roam: vm ([0-9a-f]+) running/.exec(src.err())?.[1];
    if (!id) throw new Error(`VM did not start: ${src.err().trim()}`);
    await until(
      () => w.ready(src.out()) || src.proc.exitCode !== null,
      `${w.name} to get going`,
      60_000,
    );
    if (src.proc.exitCode !== null) throw new Error(`VM exited early: ${src.err().trim()}`);

    let clients: Proc | null = null;
    const status = () => {
      const lines = clients!.out().trim().split('\n');
      for (let i = lines.length - 1; i >= 0; i--) {
        try {
          return JSON.parse(lines[i]) as { type: string; clients: ClientStats[] };
        } catch {
          /* partial */
        }
      }
      return null;
    };
    const minSeq = () => Math.min(...(status()?.clients.map((c) => c.seq) ?? [0]));
    if (isGame(w.key)) {
      clients = spawnNode(
        [SELF, '--clients', String(GAME_CLIENTS), link.clientAddrs(gport).join(',')],
        link.srcNs,
      );
      procs.push(clients);
      await until(
        () => minSeq() >= 40 || clients!.proc.exitCode !== null,
        'the game clients to get going',
        20_000,
      );
      if (clients.proc.exitCode !== null)
        throw new Error(`game clients failed: ${clients.err().trim()}`);
      clients.send('mark\n');
    } else await sleep(300);

    const m = roamProc(['migrate', id, '--to', addr, '--json', ...(w.migrate ?? [])]);
    procs.push(m);
    const killer = setTimeout(() => m.proc.kill('SIGKILL'), 180_000);
    const code = await m.exited;
    clearTimeout(killer);
    if (code !== 0)
      throw new Error(
        `roam migrate exited ${code}: ${(m.err() || m.out()).trim().split('\n').slice(-3).join(' | ')}`,
      );
    const res = JSON.parse(m.out().trim().split('\n').pop()!) as MigrateJson;
    await until(() => src.proc.exitCode !== null, 'the source to end', 10_000).catch(() => {});

    if (clients) {
      const after = minSeq();
      await until(
        () => minSeq() >= after + 40 || clients.proc.exitCode !== null,
        'the clients to carry on with the destination',
        20_000,
      );
      clients.send('stop\n');
      await until(() => clients.proc.exitCode !== null, 'the clients to stop', 10_000);
      const fin = status()!;
      rec.client_gap_ms = Math.max(...fin.clients.map((c) => c.gap));
      rec.client_gap_detail = fin.clients.reduce((a, c) => (c.gap > a.gap ? c : a)).gapDetail;
      // Where the largest gap began, relative to the freeze (negative: before it).
      if (rec.client_gap_detail?.startAt && res.frozenAt)
        rec.client_gap_detail.freezeMs = rec.client_gap_detail.startAt - res.frozenAt;
      rec.client_gap_before_ms = Math.max(...fin.clients.map((c) => c.gapBefore));
      rec.client_reconnects = fin.clients.reduce((a, c) => a + c.reconnects, 0);
      rec.client_errors = fin.clients.reduce((a, c) => a + c.errors, 0);
      rec.client_messages = fin.clients.reduce((a, c) => a + c.seq, 0);
    }

    const pageBytes = res.rounds[0]
      ? (res.rounds[0].sent + res.rounds[0].postponed) * 4096
      : res.pagesSent * 4096;
    const mustMove = pageBytes + res.kernelBytes;
    const rate = link.rate ?? res.linkRate;
    // The source's totalMs ends when it has written the stream; carry on to the
    // destination's first instruction (or its confirmation if it did not report that).
    const after = (res.timeline.firstInstructionMs ?? res.confirmMs) - res.timeline.sentMs;
    const totalS = (res.totalMs + Math.max(0, after)) / 1000;
    Object.assign(rec, {
      ok: true,
      downtime_ms: res.downtimeMs,
      freeze_ms: res.freezeMs,
      total_s: totalS,
      stream_s: res.totalMs / 1000,
      bytes: res.bytes,
      must_move_bytes: mustMove,
      link_rate: rate,
      link_rate_source: link.rate ? 'tc' : 'measured',
      link_limit_s: rate ? mustMove / rate : undefined,
      wire_s: rate ? res.bytes / rate : undefined,
      ratio: rate ? totalS / (mustMove / rate) : undefined,
      compressed: res.compressed,
      rounds: res.rounds.map((r) => ({
        round: r.round,
        sent: r.sent,
        postponed: r.postponed,
        wss: r.wss,
        buffer: r.buffer,
        bytes: r.bytes,
        ms: r.ms,
        throttled: r.throttled,
      })),
      timeline: res.timeline,
      confirm_ms: res.confirmMs,
      snapshot_pages: res.snapshotPages,
    });
  } catch (err) {
    rec.error = (err as Error).message;
  } finally {
    for (const p of procs.reverse()) await end(p);
    await endAll();
    rec.wall_s = (performance.now() - t0) / 1000;
  }
  return rec;
}

// ---------------------------------------------------------------------------
// Hypercube fork (thesis Figure 8.11): examples/hypercube forks its own VM to
// 2^k - 1 cstraps in k rounds, from inside through /dev/checkpoint. Timed from
// the original's first "forking" line to the last copy's result line, against
// the same VM forked once (k = 1), four times in a row: log2(16) rounds.

interface HypercubeRun {
  copies: number;
  ok: boolean;
  error?: string;
  ms?: number;
  checksums?: string[];
  cpuMs?: number;
}

/** CPU time (user + system) a process has used so far, ms (Linux /proc). */
function cpuMs(pid: number | undefined): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** When `re` first matches what `stream` has written (performance.now(), this process). */
function stamp(stream: NodeJS.ReadableStream, re: RegExp, count = 1): Promise<number> {
  return new Promise((resolve) => {
    let text = '';
    const on = (d: Buffer) => {
      text += d;
      if ((text.match(new RegExp(re.source, 'g')) ?? []).length >= count) {
        stream.off('data', on);
        resolve(performance.now());
      }
    };
    stream.on('data', on);
  });
}

async function hypercubeOnce(copies: number): Promise<HypercubeRun> {
  const procs: Proc[] = [];
  try {
    const dsts = await Promise.all(
      Array.from({ length: copies - 1 }, async () => {
        const d = roamProc(['cstrap', '--listen', '127.0.0.1:0']);
        procs.push(d);
        await until(
          () => /cstrap listening on (\S+)/.test(d.err()) || d.proc.exitCode !== null,
          'a cstrap to listen',
          60_000,
        );
        const addr = /cstrap listening on (\S+)/.exec(d.err())?.[1];
        if (!addr) throw new Error(`cstrap did not start: ${d.err().trim()}`);
        return { d, addr, done: stamp(d.proc.stdout!, /copy \d+ of \d+: checksum/) };
      }),
    );
    const vm = roamProc(['run', ex('hypercube'), ...dsts.map((x) => x.addr)]);
    procs.push(vm);
    const first = stamp(vm.proc.stderr!, /round 0: copy 0 forking/);
    const ends = [stamp(vm.proc.stdout!, /copy \d+ of \d+: checksum/), ...dsts.map((x) => x.done)];
    const all = Promise.all([first, ...ends]);
    const exited = Promise.all(procs.map((p) => p.exited)).then((codes) => {
      throw new Error(`a copy exited before all had finished (exit codes ${codes.join(',')})`);
    });
    const timeout = sleep(120_000).then(() => {
      throw new Error('timed out');
    });
    // Sampled, as a copy that has finished exits (and its /proc entry goes with it).
    const seen = new Map<number, number>();
    const sample = () => {
      for (const p of procs) {
        const c = cpuMs(p.proc.pid);
        if (c > 0) seen.set(p.proc.pid!, c);
      }
    };
    // The baseline is taken at the first "forking" line: the VM's own start-up is not the fork's.
    let cpu0 = 0;
    void first.then(() => {
      sample();
      cpu0 = [...seen.values()].reduce((a, b) => a + b, 0);
    });
    const sampler = setInterval(sample, 5);
    const [t0, ...t] = await Promise.race([all, exited, timeout]).finally(() =>
      clearInterval(sampler),
    );
    sample();
    const cpu = [...seen.values()].reduce((a, b) => a + b, 0) - cpu0;
    const outs = [vm.out(), ...dsts.map((x) => x.d.out())].join('');
    const checksums = [...outs.matchAll(/copy (\d+) of \d+: checksum ([0-9a-f]+)/g)].map(
      (m) => `${m[1]}:${m[2]}`,
    );
    const ids = new Set(checksums.map((c) => c.split(':')[0]));
    const sums = new Set(checksums.map((c) => c.split(':')[1]));
    if (ids.size !== copies || sums.size !== 1)
      throw new Error(`expected ${copies} copies with one checksum, got ${checksums.join(' ')}`);
    return { copies, ok: true, ms: Math.max(...t) - t0, checksums, cpuMs: cpu };
  } catch (err) {
    return { copies, ok: false, error: (err as Error).message };
  } finally {
    for (const p of procs.reverse()) await end(p);
    await endAll();
  }
}

/** Prepare (instrument, cache) every example once, outside the measurements. */
async function warmUp(): Promise<void> {
  for (const [prog, args] of [
    ['bigmem', ['1', '1']],
    ['dirtier', ['1', '1']],
  ] as const) {
    const p = roamProc(['run', '--quiet', ex(prog), ...args]);
    if ((await p.exited) !== 0) throw new Error(`warm-up ${prog} failed: ${p.err()}`);
  }
  const port = await freePort();
  const g = roamProc(['run', '--quiet', '--tcplisten', `127.0.0.1:${port}`, ex('game-server')]);
  await until(
    () => g.out().includes('listening') || g.proc.exitCode !== null,
    'warm-up game-server',
    120_000,
  );
  await end(g);
  // The cstrap compiles the module while pages arrive: one small migration warms that too.
  await migrateOnce(
    {
      key: 'idle',
      name: 'warm-up',
      mib: 1,
      program: 'bigmem',
      args: ['1', '1000000', '600000'],
      ready: (o) => o.includes('iter 0'),
    },
    loopback,
    0,
  );
}

// ---------------------------------------------------------------------------
// Main.

const file = jsonPath('migrate');
const outDir = path.dirname(path.resolve(file));
fs.mkdirSync(outDir, { recursive: true });
fs.mkdirSync(HOME, { recursive: true });
process.stderr.write(`ROAM_HOME=${HOME}; preparing the examples ...\n`);
await warmUp();

const links: Array<{ link: Link; keys: Key[]; tc?: string }> = [
  { link: loopback, keys: ['idle', 'wss', 'game', 'dirtier'] },
];
const nsProblem = await netnsSetup();
if (nsProblem) console.log(`note: no network-namespace links (${nsProblem}); loopback only`);
else {
  links.push({
    link: veth('veth 1Gbit', 1e9 / 8),
    keys: ['idle', 'wss', 'game', 'dirtier'],
    tc: '1gbit',
  });
  // 256 MiB flat out over 100 Mbit would take minutes of throttled rounds: the slow
  // link gets the game server (its target), the idle guest and the dirtier.
  links.push({
    link: veth('veth 100Mbit', 1e8 / 8),
    keys: quick
      ? ['idle', 'game', 'gameloose', 'dirtier']
      : ['game', 'gameloose', 'idle', 'dirtier'],
    tc: '100mbit',
  });
}

const runs: RunRecord[] = [];
try {
  for (const { link, keys, tc } of links) {
    if (tc) {
      try {
        netnsShape(tc);
      } catch (err) {
        console.log(
          `note: cannot shape the veth link to ${tc} (${(err as Error).message}); skipping ${link.name}`,
        );
        continue;
      }
    }
    for (const key of keys.filter((k) => !ONLY || ONLY.includes(k)))
      for (let r = 0; r < RUNS; r++) {
        const w = WORKLOADS[key];
        process.stderr.write(
          `${w.name} over ${link.name}${RUNS > 1 ? ` (run ${r + 1}/${RUNS})` : ''} ... `,
        );
        const rec = await migrateOnce(w, link, r);
        process.stderr.write(
          rec.ok
            ? `downtime ${rec.downtime_ms?.toFixed(1)} ms, ${rec.rounds?.length} rounds, ${rec.total_s?.toFixed(2)} s (${rec.wall_s?.toFixed(1)} s wall)` +
                `${rec.client_gap_ms !== undefined ? `; client gap ${rec.client_gap_ms.toFixed(1)} ms ${JSON.stringify(rec.client_gap_detail)}` : ''}\n`
            : `FAILED: ${rec.error}\n`,
        );
        runs.push(rec);
      }
  }
} finally {
  await endAll();
  if (!nsProblem) netnsCleanup();
}

// Hypercube fork to HC_COPIES VMs against log2(HC_COPIES) single forks of the same VM, on loopback.
const HC_COPIES = quick ? 8 : 16;
const HC_ROUNDS = Math.log2(HC_COPIES);
let hypercube: {
  copies: number;
  rounds: number;
  runs: Array<{ hypercube: HypercubeRun; singles: HypercubeRun[]; ratio?: number }>;
} | null = null;
if (!ONLY || ONLY.includes('hypercube')) {
  hypercube = { copies: HC_COPIES, rounds: HC_ROUNDS, runs: [] };
  for (let r = 0; r < RUNS; r++) {
    process.stderr.write(
      `hypercube fork to ${HC_COPIES} VMs, and ${HC_ROUNDS} single forks${RUNS > 1 ? ` (run ${r + 1}/${RUNS})` : ''} ... `,
    );
    const singles: HypercubeRun[] = [];
    for (let i = 0; i < HC_ROUNDS; i++) singles.push(await hypercubeOnce(2));
    const hc = await hypercubeOnce(HC_COPIES);
    const ok = hc.ok && singles.every((x) => x.ok);
    const singleMs = singles.reduce((a, x) => a + (x.ms ?? 0), 0);
    const ratio = ok ? hc.ms! / singleMs : undefined;
    hypercube.runs.push({ hypercube: hc, singles, ratio });
    process.stderr.write(
      ok
        ? `${hc.ms!.toFixed(0)} ms vs ${singleMs.toFixed(0)} ms (${ratio!.toFixed(2)}x)\n`
        : `FAILED: ${hc.error ?? singles.find((x) => !x.ok)?.error}\n`,
    );
  }
}

const f = (v: number | null | undefined, d = 1) =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '-';
const roundsCell = (r: RunRecord) => {
  const n = r.rounds?.length ?? 0;
  const t = r.rounds?.filter((x) => Object.keys(x.throttled).length > 0).length ?? 0;
  return t ? `${n} (${t} throttled)` : String(n);
};
console.log(
  `\nLive migration, source and destination on this host (${os.cpus().length} CPUs, node ${process.version})${RUNS > 1 ? `, ${RUNS} runs each` : ''}`,
);
console.log(
  "downtime: source freeze -> first instruction at the destination; total: start -> first instruction; link limit: the VM's pages + kernel state / link rate (tc rate, or the measured rate on loopback)",
);
console.log(
  table(
    runs.map((r) => ({
      workload: r.workload,
      link: r.link,
      ...(RUNS > 1 ? { run: r.run + 1 } : {}),
      MiB: r.memory_mib,
      'downtime ms': r.ok ? f(r.downtime_ms) : 'FAILED',
      'freeze ms': f(r.freeze_ms, 2),
      'client gap ms': isGame(r.key) ? f(r.client_gap_ms) : '',
      'total s': f(r.total_s, 2),
      'link limit s': f(r.link_limit_s, 2),
      ratio: f(r.ratio, 2),
      rounds: r.ok ? roundsCell(r) : (r.error ?? '').slice(0, 60),
    })),
  ),
);

// Targets.
const targets: Array<Record<string, string>> = [];
const verdict = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'met' : 'NOT met');
const ok = runs.filter((r) => r.ok);
const games100 = ok.filter((r) => isGame(r.key) && r.link === 'veth 100Mbit');
if (games100.length)
  for (const r of games100) {
    targets.push({
      target: 'game server downtime < 25 ms on 100 Mbit',
      run: `${r.workload}, ${r.link}${RUNS > 1 ? ` #${r.run + 1}` : ''}`,
      measured: `${f(r.downtime_ms)} ms (client gap ${f(r.client_gap_ms)} ms)`,
      result: verdict((r.downtime_ms ?? Infinity) < 25),
    });
  }
else
  targets.push({
    target: 'game server downtime < 25 ms on 100 Mbit',
    run: 'no 100 Mbit link',
    measured: '-',
    result: 'n/a',
  });
for (const r of ok.filter(
  (x) => x.key === 'idle' && (x.link === 'loopback' || x.link === 'veth 1Gbit'),
)) {
  targets.push({
    target: `${r.memory_mib} MiB guest downtime < 5 ms (veth/loopback)`,
    run: `${r.workload}, ${r.link}${RUNS > 1 ? ` #${r.run + 1}` : ''}`,
    measured: `${f(r.downtime_ms)} ms (freeze ${f(r.freeze_ms, 2)} ms)`,
    result: verdict((r.downtime_ms ?? Infinity) < 5),
  });
}
for (const r of ok) {
  targets.push({
    target: 'total within 1.2x link limit',
    run: `${r.workload}, ${r.link}${RUNS > 1 ? ` #${r.run + 1}` : ''}`,
    measured: `${f(r.ratio, 2)}x (${f(r.total_s, 2)} s vs ${f(r.link_limit_s, 2)} s)`,
    result: verdict(r.ratio === undefined ? null : r.ratio <= 1.2),
  });
}
for (const r of runs.filter((x) => !x.ok))
  targets.push({
    target: '(run failed)',
    run: `${r.workload}, ${r.link}`,
    measured: (r.error ?? '').slice(0, 80),
    result: 'NOT met',
  });
console.log(
  '\nWhere the downtime went (ms after the source froze): stream sent, END received, verified, VM built, first instruction at the destination',
);
console.log(
  table(
    ok.map((r) => ({
      workload: r.workload,
      link: r.link,
      ...(RUNS > 1 ? { run: r.run + 1 } : {}),
      freeze: f(r.freeze_ms),
      sent: f(r.timeline?.sentMs),
      END: f(r.timeline?.endMs),
      verified: f(r.timeline?.verifiedMs),
      built: f(r.timeline?.builtMs),
      'first instr.': f(r.timeline?.firstInstructionMs),
      confirm: f(r.confirm_ms),
      'snapshot pages': r.snapshot_pages ?? '-',
    })),
  ),
);

if (hypercube) {
  console.log(
    `\nHypercube fork (thesis Figure 8.11): one VM forks itself to ${hypercube.copies} VMs in ${hypercube.rounds} rounds, from inside through /dev/checkpoint, against ${hypercube.rounds} single forks of the same VM one after the other (loopback; first "forking" line -> last copy's result)`,
  );
  console.log(
    table(
      hypercube.runs.map((x, i) => ({
        ...(RUNS > 1 ? { run: i + 1 } : {}),
        [`fork to ${hypercube.copies} ms`]: x.hypercube.ok ? f(x.hypercube.ms) : 'FAILED',
        'single forks ms': x.singles.map((y) => (y.ok ? f(y.ms) : 'FAILED')).join(' + '),
        [`${hypercube.rounds} singles ms`]: f(x.singles.reduce((a, y) => a + (y.ms ?? 0), 0)),
        ratio: f(x.ratio, 2),
        // CPU of every VM process over the run, and the least wall time it allows on this host's cores.
        'CPU ms (fork / singles)': `${f(x.hypercube.cpuMs)} / ${f(x.singles.reduce((a, y) => a + (y.cpuMs ?? 0), 0))}`,
        [`CPU-bound floor on ${os.cpus().length} cores, ms`]: f(
          x.hypercube.cpuMs === undefined ? undefined : x.hypercube.cpuMs / os.cpus().length,
        ),
      })),
    ),
  );
  for (const [i, x] of hypercube.runs.entries()) {
    targets.push({
      target: `hypercube fork to ${hypercube.copies} < 1.3x ${hypercube.rounds} single migrations`,
      run: `loopback${RUNS > 1 ? ` #${i + 1}` : ''}`,
      measured:
        x.ratio === undefined
          ? (x.hypercube.error ?? x.singles.find((y) => !y.ok)?.error ?? 'failed').slice(0, 80)
          : `${f(x.ratio, 2)}x (${f(x.hypercube.ms)} ms vs ${f(x.singles.reduce((a, y) => a + (y.ms ?? 0), 0))} ms)`,
      result: x.ratio === undefined ? 'NOT met' : verdict(x.ratio < 1.3),
    });
  }
}

console.log('\nAgainst the targets');
console.log(table(targets));

// Charts: prefer the 1 Gbit veth run (closest to the thesis' setting), else loopback.
const pick = (key: Key) =>
  ['veth 1Gbit', 'loopback', 'veth 100Mbit']
    .map((l) => ok.find((r) => r.key === key && r.link === l && r.rounds?.length))
    .find(Boolean);
const charts: string[] = [];
const wssRun = pick('wss');
if (wssRun) {
  const svg = lineChart({
    title: `Per-round WSS and snapshot buffer: ${wssRun.workload} (bigmem ${wssRun.memory_mib} MiB), ${wssRun.link}`,
    xLabel: 'pre-copy round',
    yLabel: 'pages (log scale, 0 drawn at 1)',
    integerX: true,
    logY: true,
    series: [
      {
        name: 'writable working set (pages dirtied during the round)',
        color: '#c0392b',
        points: wssRun.rounds!.map((r) => [r.round, r.wss]),
      },
      {
        name: 'snapshot buffer',
        color: '#2471a3',
        dash: '6 4',
        points: wssRun.rounds!.map((r) => [r.round, r.buffer]),
      },
    ],
  });
  const p = path.join(outDir, 'migrate-wss.svg');
  fs.writeFileSync(p, svg);
  charts.push(p);
}
const dirtRun = pick('dirtier');
if (dirtRun) {
  const bands: Band[] = [];
  for (const r of dirtRun.rounds!) {
    const states = Object.values(r.throttled);
    if (states.length === 0) continue;
    const paused = states.includes('paused');
    bands.push({
      x0: r.round - 0.5,
      x1: r.round + 0.5,
      color: paused ? '#c0392b' : '#f39c12',
      label: paused ? 'guest paused' : 'guest throttled (slowed)',
      text: [...new Set(states)].join(','),
    });
  }
  const svg = lineChart({
    title: `Dirtier (${dirtRun.memory_mib} MiB), ${dirtRun.link}: WSS per round, throttled rounds shaded`,
    xLabel: 'pre-copy round',
    yLabel: 'pages (log scale, 0 drawn at 1)',
    integerX: true,
    logY: true,
    bands,
    series: [
      { name: 'WSS', color: '#2c3e50', points: dirtRun.rounds!.map((r) => [r.round, r.wss]) },
      {
        name: 'snapshot buffer',
        color: '#2471a3',
        dash: '6 4',
        points: dirtRun.rounds!.map((r) => [r.round, r.buffer]),
      },
    ],
  });
  const p = path.join(outDir, 'migrate-throttle.svg');
  fs.writeFileSync(p, svg);
  charts.push(p);
}

writeJson(file, {
  machine: { cpus: os.cpus().length, node: process.version },
  quick,
  runs_per_config: RUNS,
  netns: nsProblem
    ? { available: false, why: nsProblem }
    : {
        available: true,
        links: links
          .filter((l) => l.tc)
          .map((l) => ({ name: l.link.name, tc: `tbf rate ${l.tc} burst 256kb latency 50ms` })),
      },
  definitions: {
    downtime_ms: 'source freeze -> first instruction at the destination (wall clock, same host)',
    freeze_ms:
      'source freeze (programs stopped while the last dirty pages and kernel state were copied)',
    client_gap_ms: `largest gap between consecutive replies over all ${GAME_CLIENTS} clients (one message every 5 ms each), from just before the migration until 40 replies each after it`,
    link_limit_s:
      'must_move_bytes (round-0 pages x 4096 + kernel state) / link rate; link rate = tc rate, or the measured linkRate on loopback',
    total_s:
      'migration start -> first instruction at the destination (stream_s: start -> source has written the whole stream)',
    ratio: 'total_s / link_limit_s',
    wire_s: 'bytes actually sent (after LZ4, if compressed) / link rate',
    hypercube:
      "ms from the original VM's first \"forking\" line to the last copy's result line; ratio = fork to N / the sum of log2(N) single forks (hypercube with one address) of the same program; cpuMs = user+system CPU of all the run's VM processes over that time (/proc)",
    rounds:
      'per pre-copy round: pages sent, postponed (dirtied again before the cleaner reached them), wss (pages dirtied during the round), snapshot buffer (pages), throttled ({pid: "1/2" | ... | "paused"})',
  },
  runs,
  hypercube,
  targets,
});
console.log(`\nJSON written to ${file}${charts.length ? `; charts: ${charts.join(', ')}` : ''}`);
process.exit(0);
