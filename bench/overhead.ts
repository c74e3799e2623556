// bench/overhead: what making a program checkpointable costs.
//  1. Slowdown of each example prepared-but-not-checkpointing, with the write barrier
//     on but no cleaner, and while being checkpointed continuously, against the same
//     module under plain V8 (node:wasi).
//     Each run is a fresh process; runs alternate so machine noise hits all variants.
//  2. A 256 MiB guest checkpointed to disk (stream and image): size, total time,
//     freeze; and the time to restore it in a fresh process.
// Usage: npm run bench:overhead -- [--json FILE] [--runs N] [--quick]
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { table, writeJson, jsonPath } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const quick = process.argv.includes('--quick');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : quick ? 1 : 3;
const ex = (n: string) => path.join(root, 'examples', `${n}.wasm`);

const workloads = [
  { name: 'bigmem (64 MiB, C)', program: ex('bigmem'), args: quick ? ['32', '4'] : ['64', '8'] },
  {
    name: 'sieve (AssemblyScript)',
    program: ex('sieve-as'),
    args: quick ? ['50000000'] : ['300000000', '5000000'],
  },
  { name: 'files (C, RAM disk)', program: ex('files'), args: ['/tmp/work', quick ? '10' : '40'] },
];

// V8 has no on-stack replacement for wasm: a hot loop inside a function entered once
// (main) stays in the baseline compiler for the whole run, while roam re-enters it
// every time slice and so gets it optimised. `--no-liftoff` compiles everything with
// the optimising compiler up front and isolates the cost of the instrumentation.
const CONFIGS = [
  { name: 'default', flags: [] as string[] },
  { name: '--no-liftoff', flags: ['--no-liftoff'] },
];

interface Timing {
  ms: number;
  code: number;
  stdout: string;
  checkpoints?: number;
  failed?: string;
  stderr?: string;
}

/** Output of each workload's first plain-V8 run: every later run must print the same. */
const expected = new Map<string, string>();

/** One timed run; throws unless the guest exited 0, printed what plain V8 printed, and every checkpoint succeeded. */
function time(mode: string, program: string, args: string[], flags: string[]): Timing {
  const out = execFileSync(
    process.execPath,
    [
      ...flags,
      '--single-threaded-gc',
      '--no-warnings',
      path.join(here, 'guest-timer.js'),
      mode,
      program,
      ...args,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  const t = JSON.parse(out.trim().split('\n').pop()!) as Timing;
  const what = `${mode} ${path.basename(program)} ${args.join(' ')} ${flags.join(' ')}`.trim();
  const detail = t.stderr ? `\n${t.stderr}` : '';
  if (t.code !== 0) throw new Error(`bench: ${what}: the guest exited with ${t.code}${detail}`);
  if (t.failed) throw new Error(`bench: ${what}: a checkpoint failed: ${t.failed}${detail}`);
  const key = `${program} ${args.join(' ')}`;
  if (mode === 'v8' && !expected.has(key)) expected.set(key, t.stdout);
  else if (expected.has(key) && expected.get(key) !== t.stdout)
    throw new Error(
      `bench: ${what}: the guest printed something else than under plain V8${detail}`,
    );
  return t;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const slowdown: Array<Record<string, string | number>> = [];
const json: Record<string, unknown> = {
  machine: { cpus: os.cpus().length, node: process.version },
  runs: RUNS,
  workloads: [] as unknown[],
};
for (const w of workloads)
  for (const cfg of CONFIGS) {
    process.stderr.write(`timing ${w.name} (${cfg.name}) ...\n`);
    time('v8', w.program, w.args, cfg.flags); // the expected output
    time('roam', w.program, w.args, cfg.flags); // prepare + cache, not measured
    const v8: number[] = [],
      plain: number[] = [],
      tracked: number[] = [],
      ckpt: number[] = [];
    let checkpoints = 0;
    for (let i = 0; i < RUNS; i++) {
      v8.push(time('v8', w.program, w.args, cfg.flags).ms);
      plain.push(time('roam', w.program, w.args, cfg.flags).ms);
      tracked.push(time('roam-tracked', w.program, w.args, cfg.flags).ms);
      const c = time('roam-ckpt', w.program, w.args, cfg.flags);
      ckpt.push(c.ms);
      checkpoints += c.checkpoints ?? 0;
    }
    const r = {
      v8: median(v8),
      plain: median(plain),
      tracked: median(tracked),
      ckpt: median(ckpt),
    };
    slowdown.push({
      workload: w.name,
      v8: cfg.name,
      'v8 ms': r.v8,
      'roam ms': r.plain,
      'not ckpt %': (r.plain / r.v8 - 1) * 100,
      'barrier only %': (r.tracked / r.v8 - 1) * 100,
      'ckpt cont. ms': r.ckpt,
      'ckpt cont. %': (r.ckpt / r.v8 - 1) * 100,
      checkpoints: Math.round(checkpoints / RUNS),
    });
    (json.workloads as unknown[]).push({
      name: w.name,
      v8_flags: cfg.flags,
      args: w.args,
      v8_ms: v8,
      roam_ms: plain,
      roam_tracked_ms: tracked,
      roam_ckpt_ms: ckpt,
      checkpoints_per_run: checkpoints / RUNS,
      slowdown_not_checkpointing: r.plain / r.v8 - 1,
      slowdown_barrier_only: r.tracked / r.v8 - 1,
      slowdown_checkpointing: r.ckpt / r.v8 - 1,
    });
  }
console.log(
  '\nSlowdown against plain V8 (node:wasi, same module uninstrumented); median of',
  RUNS,
  'runs',
);
console.log(table(slowdown));

process.stderr.write('checkpointing a 256 MiB guest ...\n');
const big = JSON.parse(
  execFileSync(process.execPath, [path.join(here, 'big-checkpoint.js'), quick ? '64' : '256'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  })
    .trim()
    .split('\n')
    .pop()!,
);
console.log(
  `\n${big.mib} MiB guest (bigmem, sleeping between passes) checkpointed to disk, restored in a fresh process`,
);
console.log(table(big.rows));
json.big = big;
const file = jsonPath('overhead');
writeJson(file, json);
console.log(`\nJSON written to ${file}`);
