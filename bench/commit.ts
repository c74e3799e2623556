// bench/commit: what a migration's commit costs (src/migrate/commit.ts). The same
// small VM (examples/counter, 1 MiB rewritten every tick) is migrated on loopback
// between a `roam run` and a `roam cstrap`, N times each, with the source as its
// own arbiter (a decision file) and with `roam home` as the arbiter (its SQLite
// ledger, a round trip to it); interleaved, so both meet the same machine load.
// Per run: the source's freeze, freeze -> decision, and the downtime (freeze ->
// the destination's first instruction). Prints a table and writes JSON.
// Usage: npm run bench:commit -- [--runs N] [--json FILE]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonPath, table, writeJson } from './util.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROAM = path.join(root, 'bin/roam.js');
const HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-bench-commit-'));
const env = { ...process.env, ROAM_HOME: HOME };
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 8;
const kids: ChildProcess[] = [];

/** Start a roam command; resolves with the first match of `re` on its stderr. */
function serve(args: string[], re: RegExp): Promise<{ p: ChildProcess; m: string }> {
  const p = spawn(process.execPath, [ROAM, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  kids.push(p);
  let err = '';
  return new Promise((resolve, reject) => {
    p.stderr.on('data', (d) => {
      err += d;
      const m = re.exec(err);
      if (m) resolve({ p, m: m[1] });
    });
    p.on('exit', (c) => reject(new Error(`roam ${args[0]} exited ${c}: ${err}`)));
  });
}

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [ROAM, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(err))));
  });
}

interface Sample {
  arbiter: 'source' | 'home';
  freezeMs: number;
  decisionMs: number;
  downtimeMs: number;
}

async function once(arbiter: Sample['arbiter'], homeAddr: string): Promise<Sample> {
  const dst = await serve(['cstrap'], /cstrap listening on (\S+)/);
  const src = await serve(
    ['run', path.join(root, 'examples/counter.wasm'), '100000', '20'],
    /roam: vm ([0-9a-f]+) running/,
  );
  await new Promise((r) => setTimeout(r, 300));
  const args = ['migrate', src.m, '--to', dst.m, '--json'];
  if (arbiter === 'home') args.push('--home', homeAddr);
  const res = JSON.parse(await run(args)) as {
    freezeMs: number;
    confirmMs: number;
    downtimeMs: number;
  };
  dst.p.kill();
  src.p.kill();
  return { arbiter, freezeMs: res.freezeMs, decisionMs: res.confirmMs, downtimeMs: res.downtimeMs };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const home = await serve(['home', '--db', path.join(HOME, 'home.db')], /home listening on (\S+)/);
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++)
    for (const a of ['source', 'home'] as const) samples.push(await once(a, home.m));
  home.p.kill();
  const rows = (['source', 'home'] as const).map((a) => {
    const s = samples.filter((x) => x.arbiter === a);
    return {
      arbiter: a === 'home' ? 'roam home (SQLite ledger)' : 'source (decision file)',
      runs: s.length,
      'freeze p50 ms': median(s.map((x) => x.freezeMs)),
      'freeze -> decision p50 ms': median(s.map((x) => x.decisionMs)),
      'downtime p50 ms': median(s.map((x) => x.downtimeMs)),
      'downtime max ms': Math.max(...s.map((x) => x.downtimeMs)),
    };
  });
  console.log(table(rows));
  const ratio = rows[1]['downtime p50 ms'] / rows[0]['downtime p50 ms'];
  console.log(`downtime with home / with the source as arbiter: ${ratio.toFixed(2)}x`);
  writeJson(jsonPath('commit'), { runs: RUNS, rows, ratio, samples });
}

main()
  .catch((err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const k of kids) k.kill('SIGKILL');
    fs.rmSync(HOME, { recursive: true, force: true });
  });
