// Real programs under roam, against node:wasi running the same original module,
// measured in the same run.
//
// Per program: the cold preparation (empty cache; `roam run`'s own "prepared ... in"
// line), the wall time of a run vs node:wasi (samples interleaved, median of each;
// both as separate processes, from spawn to exit), and for the long ones the
// downtime of a checkpoint and of a live migration taken mid-run.
//
// Usage: npm run bench:real -- [--json FILE] [--samples N] [--only sqlite,sieve,tiny] [--size N]
//
// The SQLite guest is built by scripts/build-guests.sh (clang + wasi-libc); without
// it that row is left out with the reason.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { guest } from '../test/real-guests.js';
import { jsonPath, table, writeJson } from './util.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const ROAM = path.join(ROOT, 'bin/roam.js');
const NODE_WASI = path.join(ROOT, 'dist/test/node-wasi.js');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SAMPLES = Number(arg('--samples', '5'));
const ONLY = arg('--only', 'sqlite,sieve,tiny').split(',');
const SIZE = arg('--size', '10');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-bench-real-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

interface Proc {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a process to its end; `onOut` sees stdout as it comes (to act mid-run). */
function run(
  cmd: string[],
  env: Record<string, string> = {},
  onOut?: (out: string, pid: number) => void,
): Promise<Proc> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn(cmd[0], cmd.slice(1), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onOut?.(stdout, p.pid!);
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) =>
      resolve({ code: code ?? 128, stdout, stderr, ms: performance.now() - t0 }),
    );
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Program {
  name: string;
  wasm: string;
  /** Arguments of the timed run (same under node:wasi). */
  args: string[];
  /** Arguments of the checkpoint/migration run, and the stdout that says it is mid-run. */
  midRun?: { args: string[]; ready: RegExp };
}

function programs(): { list: Program[]; skipped: string[] } {
  const list: Program[] = [];
  const skipped: string[] = [];
  if (ONLY.includes('sqlite')) {
    const g = guest('sqlite-speed');
    if (!g.path) skipped.push(`sqlite-speed: ${g.why}`);
    else
      list.push({
        name: 'sqlite-speed',
        wasm: g.path,
        args: [':memory:', SIZE],
        midRun: { args: ['/speed.db', '4'], ready: /txn stage {2}2\/20/ },
      });
  }
  if (ONLY.includes('sieve'))
    list.push({
      name: 'sieve-as',
      wasm: path.join(ROOT, 'examples/sieve-as.wasm'),
      args: ['200000000', '5000000'],
    });
  if (ONLY.includes('tiny'))
    list.push({
      name: 'counter 1 0 (tiny)',
      wasm: path.join(ROOT, 'examples/counter.wasm'),
      args: ['1', '0'],
    });
  return { list, skipped };
}

async function prepareCold(p: Program, home: string) {
  const r = await run([process.execPath, ROAM, 'run', '--quiet', p.wasm, ...p.args], {
    ROAM_HOME: home,
  });
  if (r.code !== 0) throw new Error(`${p.name}: roam run failed: ${r.stderr}`);
  const m = /prepared .* in ([\d.]+) s \(Asyncify ([\d.]+) s\)/.exec(r.stderr);
  const by = /Asyncify over (\d+) of (\d+) functions \(([^)]+)\)/.exec(r.stderr);
  return {
    prepare_s: m ? Number(m[1]) : NaN,
    asyncify_s: m ? Number(m[2]) : NaN,
    unwindable: by ? `${by[1]}/${by[2]}` : '',
    asyncify_by: by?.[3] ?? '',
    stdout: r.stdout,
  };
}

async function compare(p: Program, home: string, expect: string) {
  const roamMs: number[] = [],
    wasiMs: number[] = [];
  const root = path.join(scratch, 'root');
  fs.mkdirSync(root, { recursive: true });
  for (let i = 0; i < SAMPLES; i++) {
    const a = await run([process.execPath, ROAM, 'run', '--quiet', p.wasm, ...p.args], {
      ROAM_HOME: home,
    });
    const b = await run([
      process.execPath,
      '--no-warnings',
      NODE_WASI,
      '--dir',
      root,
      p.wasm,
      ...p.args,
    ]);
    if (a.code !== 0 || a.stdout !== expect) throw new Error(`${p.name}: roam's output differs`);
    if (b.code !== 0 || b.stdout !== expect) throw new Error(`${p.name}: node:wasi's differs`);
    roamMs.push(a.ms);
    wasiMs.push(b.ms);
  }
  return { roam_ms: median(roamMs), node_wasi_ms: median(wasiMs), samples: { roamMs, wasiMs } };
}

/** Start the mid-run program and, once `ready`, run `action(vmId)`; returns its JSON. */
async function midRun(
  p: Program,
  home: string,
  action: (id: string) => string[],
): Promise<Record<string, unknown> | null> {
  if (!p.midRun) return null;
  const { args, ready } = p.midRun;
  const fired: { p?: Promise<Proc> } = {};
  let id = '';
  const vm = spawn(process.execPath, [ROAM, 'run', p.wasm, ...args], {
    env: { ...process.env, ROAM_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  vm.stderr.on('data', (d: Buffer) => {
    id ||= /roam: vm ([0-9a-f]+) running/.exec(d.toString())?.[1] ?? '';
  });
  vm.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!fired.p && id && ready.test(out))
      fired.p = run([process.execPath, ROAM, ...action(id), '--json'], { ROAM_HOME: home });
  });
  await new Promise((r) => vm.on('close', r));
  if (!fired.p) throw new Error(`${p.name}: never reached ${String(ready)}`);
  const r = await fired.p;
  if (r.code !== 0) throw new Error(`${p.name}: ${action(id).join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function cstrap(home: string): Promise<{ addr: string; done: Promise<void> }> {
  const c = spawn(process.execPath, [ROAM, 'cstrap', '--listen', '127.0.0.1:0'], {
    env: { ...process.env, ROAM_HOME: home },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const done = new Promise<void>((r) => c.on('close', () => r()));
  const addr = await new Promise<string>((resolve, reject) => {
    let err = '';
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /cstrap listening on (\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    c.on('close', () => reject(new Error(`cstrap did not start: ${err}`)));
  });
  return { addr, done };
}

async function bench(p: Program) {
  const home = fs.mkdtempSync(path.join(scratch, 'home-'));
  const cold = await prepareCold(p, home);
  const cmp = await compare(p, home, cold.stdout);
  const ck = await midRun(p, home, (id) => [
    'checkpoint',
    id,
    '-o',
    path.join(scratch, `${p.name}.ckpt`),
  ]);
  let mig: Record<string, unknown> | null = null;
  if (p.midRun) {
    const dst = await cstrap(home);
    mig = await midRun(p, home, (id) => ['migrate', id, '--to', dst.addr]);
    await dst.done;
  }
  return {
    program: p.name,
    args: p.args.join(' '),
    bytes: fs.statSync(p.wasm).size,
    ...cold,
    stdout: undefined,
    ...cmp,
    ratio: cmp.roam_ms / cmp.node_wasi_ms,
    extra_ms: cmp.roam_ms - cmp.node_wasi_ms,
    checkpoint_freeze_ms: (ck?.downtimeMs as number | undefined) ?? null,
    migration_downtime_ms: (mig?.downtimeMs as number | undefined) ?? null,
  };
}

const { list, skipped } = programs();
const results = [];
for (const p of list) {
  process.stderr.write(`bench:real: ${p.name} ...\n`);
  results.push(await bench(p));
}
const f = (n: number | null, d = 1) => (n === null || Number.isNaN(n) ? '-' : n.toFixed(d));
console.log(
  table(
    results.map((r) => ({
      program: `${r.program} ${r.args}`,
      size: `${(r.bytes / 1048576).toFixed(2)} MB`,
      'prepare cold s': f(r.prepare_s),
      'asyncify s': f(r.asyncify_s),
      unwindable: r.unwindable,
      'roam ms': f(r.roam_ms, 0),
      'node:wasi ms': f(r.node_wasi_ms, 0),
      ratio: f(r.ratio, 2),
      'checkpoint freeze ms': f(r.checkpoint_freeze_ms),
      'migration downtime ms': f(r.migration_downtime_ms),
    })),
  ),
);
for (const s of skipped) console.log(`skipped ${s}`);
console.log(
  `\nrun times: median of ${SAMPLES} interleaved samples, each a separate process from spawn to exit (warm cache); Asyncify by ${results[0]?.asyncify_by ?? '?'}; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`,
);
const file = jsonPath('real');
writeJson(file, {
  when: new Date().toISOString(),
  cpus: os.cpus().length,
  loadavg: os.loadavg(),
  samples: SAMPLES,
  results,
  skipped,
});
console.log(`written to ${file}`);
