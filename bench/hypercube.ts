// bench/hypercube: hypercube boot of one image to N cstraps (thesis 8.4, Figure
// 8.10) against a star boot (every cstrap pulls from the one source at once), in
// real processes on this host: a `roam serve-image` source, N `roam cstrap`
// processes, `roam boot-hypercube` as the coordinator. Per topology: bytes the
// source sent (its own count), time from the start to every VM running, and the
// CPU time every process spent on the boot (from /proc: utime + stime, before and
// after). A single uncontended pull is measured too, and from it a model of the
// wall time if CPU were not the limit (one core per node, as in the thesis'
// cluster): hypercube = (1 + log2 N) sequential hops; star = N copies through the
// source's one core, or one hop, whichever is longer.
// Usage: npm run bench:hypercube -- [--nodes N] [--mib M] [--runs R] [--quick] [--json FILE]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { roam, start, tmpdir, type Running } from '../test/helpers.js';
import { serve } from '../test/cluster-fixtures.js';
import { cstrap, type Cstrap } from '../test/migrate-fixtures.js';
import { example, until } from '../test/helpers.js';
import { jsonPath, table, writeJson } from './util.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const quick = process.argv.includes('--quick');
const N = arg('--nodes', 16);
const MIB = arg('--mib', quick ? 8 : 32);
const RUNS = arg('--runs', quick ? 1 : 3);
const TICK = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far. */
function cpuOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return NaN; // gone
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The image: a VM holding MIB MiB of incompressible data, checkpointed while it sleeps. */
async function makeImage(dir: string): Promise<string> {
  const vm = start(['run', example('bigmem'), String(MIB), '1000', '600000']);
  const id = await vm.vmId;
  await until(() => vm.stdout().includes('iter 0'), 'the first pass', 120_000);
  const file = path.join(dir, 'bench.img');
  const c = await roam(['checkpoint', id, '-o', file]);
  if (c.code !== 0) throw new Error(`checkpoint: ${c.stderr}`);
  vm.proc.kill('SIGKILL');
  return file;
}

interface Run {
  topology: 'hypercube' | 'star';
  nodes: number;
  sourceBytes: number;
  sourceCopies: number;
  allRunningMs: number;
  /** Wall of the coordinator process, start to exit. */
  wallMs: number;
  cpuS: { source: number; cstraps: number; coordinator: number; total: number };
  perRound?: Array<{ round: number; nodes: number; lastHaveMs: number }>;
}

async function bootOnce(image: string, n: number, star: boolean, rate?: string): Promise<Run> {
  const src = await serve(
    ['serve-image', image, '--json', ...(rate ? ['--max-bandwidth', rate] : [])],
    /"uri":"(http:[^"]+)"/,
  );
  const nodes: Cstrap[] = await Promise.all(Array.from({ length: n }, () => cstrap(['--quiet'])));
  try {
    const before = [src.r, ...nodes].map((r) => cpuOf(r.proc.pid!));
    const t0 = performance.now();
    const coord: Running = start([
      'boot-hypercube',
      '--from',
      src.match,
      '--to',
      ...nodes.map((c) => c.addr),
      '--json',
      '--timeout',
      '600s',
      ...(star ? ['--star'] : []),
    ]);
    coord.vmId.catch(() => undefined);
    let coordCpu = 0;
    coord.proc.once('exit', () => undefined);
    const poll = setInterval(() => {
      const c = cpuOf(coord.proc.pid!);
      if (c === c) coordCpu = c;
    }, 50);
    const code = await coord.exited;
    clearInterval(poll);
    const wallMs = performance.now() - t0;
    if (code !== 0) throw new Error(`boot-hypercube: ${coord.stdout()}${coord.stderr()}`);
    const after = [src.r, ...nodes].map((r) => cpuOf(r.proc.pid!));
    const res = JSON.parse(coord.stdout()) as {
      totalMs: number;
      fromSource: number;
      nodes: Array<{ round: number; haveMs: number }>;
    };
    src.r.proc.kill('SIGTERM');
    await src.r.exited;
    const totals = src.r
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"totals"'))
      .map((l) => JSON.parse(l) as { copies: number; bytesSent: number })[0];
    const d = after.map((a, i) => a - before[i]);
    const cstrapsCpu = d.slice(1).reduce((a, b) => a + b, 0);
    const rounds = new Map<number, number[]>();
    for (const r of res.nodes) rounds.set(r.round, [...(rounds.get(r.round) ?? []), r.haveMs]);
    return {
      topology: star ? 'star' : 'hypercube',
      nodes: n,
      sourceBytes: totals.bytesSent,
      sourceCopies: totals.copies,
      allRunningMs: res.totalMs,
      wallMs,
      cpuS: {
        source: d[0],
        cstraps: cstrapsCpu,
        coordinator: coordCpu,
        total: d[0] + cstrapsCpu + coordCpu,
      },
      perRound: star
        ? undefined
        : [...rounds.entries()]
            .sort((a, b) => a[0] - b[0])
            .map(([round, hs]) => ({ round, nodes: hs.length, lastHaveMs: Math.max(...hs) })),
    };
  } finally {
    src.r.proc.kill('SIGKILL');
    for (const c of nodes) c.proc.kill('SIGKILL');
  }
}

const RATE = (() => {
  const i = process.argv.indexOf('--source-rate');
  return i >= 0 ? process.argv[i + 1] : '200Mbit';
})();
const RATE_BPS = Number(/^(\d+)Mbit$/.exec(RATE)?.[1] ?? 200) * 125_000;

const dir = tmpdir('bench-hypercube');
const image = await makeImage(dir);
const size = fs.statSync(image).size;
const cores = os.cpus().length;
const hops = 1 + Math.ceil(Math.log2(N));
console.log(
  `image: ${(size / 1048576).toFixed(1)} MiB (bigmem ${MIB} MiB, checkpointed); ${N} cstraps; ${RUNS} run(s) per topology, alternating; ${cores} cores, load ${os.loadavg()[0].toFixed(1)}`,
);

interface Summary {
  topology: string;
  sourceBytes: number;
  sourceCopies: number;
  allRunningMs: number;
  cpuTotalS: number;
  cpuSourceS: number;
}

/** One setting of the source's link: one uncontended hop, then RUNS of each topology. */
async function setting(rate?: string) {
  const hop = await bootOnce(image, 1, true, rate);
  const runs: Run[] = [];
  for (let r = 0; r < RUNS; r++)
    for (const star of r % 2 ? [true, false] : [false, true])
      runs.push(await bootOnce(image, N, star, rate));
  const summary = (t: 'hypercube' | 'star'): Summary => {
    const rs = runs.filter((r) => r.topology === t);
    return {
      topology: t,
      sourceBytes: median(rs.map((r) => r.sourceBytes)),
      sourceCopies: median(rs.map((r) => r.sourceCopies)),
      allRunningMs: median(rs.map((r) => r.allRunningMs)),
      cpuTotalS: median(rs.map((r) => r.cpuS.total)),
      cpuSourceS: median(rs.map((r) => r.cpuS.source)),
    };
  };
  return {
    rate: rate ?? 'loopback, unpaced',
    hop,
    runs,
    hypercube: summary('hypercube'),
    star: summary('star'),
  };
}

function print(x: Awaited<ReturnType<typeof setting>>): void {
  console.log(
    `\nSource link: ${x.rate}. Hypercube boot against star boot, ${N} cstraps, one ${(size / 1048576).toFixed(1)} MiB image (medians of ${RUNS})`,
  );
  console.log(
    table(
      [x.hypercube, x.star].map((t) => ({
        topology: t.topology,
        'source copies': t.sourceCopies,
        'source MiB sent': t.sourceBytes / 1048576,
        'all running ms': t.allRunningMs,
        'CPU s (all processes)': t.cpuTotalS,
        'source CPU s': t.cpuSourceS,
        [`CPU floor on ${cores} cores ms`]: (t.cpuTotalS / cores) * 1000,
      })),
    ),
  );
  console.log(
    `star / hypercube: source bytes ${(x.star.sourceBytes / x.hypercube.sourceBytes).toFixed(2)}x, time to all running ${(x.star.allRunningMs / x.hypercube.allRunningMs).toFixed(2)}x; one uncontended hop ${x.hop.allRunningMs.toFixed(0)} ms`,
  );
}

const open = await setting();
print(open);
const paced = await setting(RATE);
print(paced);
// If CPU were not the limit (a core per node, as in the thesis' cluster): the hypercube's
// critical path is one hop from the source and log2 N hops between nodes; the star's is N
// copies through the source (its link, or its one core when the link is loopback).
const lanHop = open.hop.allRunningMs;
const model = {
  loopback: {
    hypercubeMs: hops * lanHop,
    starMs: Math.max(lanHop, N * open.hop.cpuS.source * 1000),
  },
  paced: {
    hypercubeMs: paced.hop.allRunningMs + (hops - 1) * lanHop,
    starMs: Math.max(paced.hop.allRunningMs, ((N * size) / RATE_BPS) * 1000 + lanHop),
  },
};
console.log(
  `\nIf CPU were not the limit (one core per node): loopback source: hypercube ${model.loopback.hypercubeMs.toFixed(0)} ms (${hops} hops of ${lanHop.toFixed(0)} ms), star ${model.loopback.starMs.toFixed(0)} ms (${N} copies of ${(open.hop.cpuS.source * 1000).toFixed(0)} ms of the source's CPU, or one hop);`,
);
console.log(
  `source at ${RATE}: hypercube ${model.paced.hypercubeMs.toFixed(0)} ms (one paced hop, then ${hops - 1} node hops), star ${model.paced.starMs.toFixed(0)} ms (${N} copies through the source's link)`,
);
const file = jsonPath('hypercube');
writeJson(file, {
  when: new Date().toISOString(),
  cores,
  load: os.loadavg(),
  nodes: N,
  imageBytes: size,
  loopback: open,
  paced: { ...paced, bytesPerSecond: RATE_BPS },
  model,
});
console.log(`\nwrote ${file}`);
process.exit(0);
