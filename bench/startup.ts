// Start-up of a tiny program: `roam run examples/args.wasm` against node:wasi
// (test/node-wasi.ts) running the same module, each as a fresh OS process from
// spawn to exit, samples interleaved so that load on the machine hits both alike.
// Prints a table and writes bench/out/startup.json. Issue #12's target: roam at
// most 50 ms slower than node:wasi.
//
//   npm run bench:startup -- [--samples N] [--json FILE]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonPath, table, writeJson } from './util.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROAM = path.join(ROOT, 'bin/roam.js');
const NODE_WASI = path.join(ROOT, 'dist/test/node-wasi.js');
const PROGRAM = path.join(ROOT, 'examples/args.wasm');
const UNBUNDLED = path.join(ROOT, 'dist/src/cli/main.js');
const at = process.argv.indexOf('--samples');
const SAMPLES = at >= 0 ? Number(process.argv[at + 1]) : 21;
const TARGET_MS = 50;

function timed(argv: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0
        ? resolve({ ms: performance.now() - t0, out })
        : reject(new Error(`${argv.join(' ')} exited ${code}`)),
    );
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-bench-startup-'));
  const env = { ...process.env, ROAM_HOME: home };
  const args = ['hello', 'world'];
  const peers = {
    roam: [process.execPath, ROAM, 'run', '--quiet', PROGRAM, ...args],
    'node:wasi': [process.execPath, '--no-warnings', NODE_WASI, PROGRAM, ...args],
    // The same CLI without the bundle (scripts/bundle.js): what ~80 separate ES modules cost.
    'roam, unbundled': [process.execPath, UNBUNDLED, 'run', '--quiet', PROGRAM, ...args],
    // Node itself, doing nothing: the floor both stand on.
    'node -e 0': [process.execPath, '-e', '0'],
  };
  // One unmeasured run each: roam prepares the module once (then it is cached), and the OS caches files.
  const want = (await timed(peers['node:wasi'], env)).out;
  if ((await timed(peers.roam, env)).out !== want) throw new Error("roam's output differs");
  const ms: Record<string, number[]> = Object.fromEntries(Object.keys(peers).map((k) => [k, []]));
  for (let i = 0; i < SAMPLES; i++)
    for (const [name, argv] of Object.entries(peers)) ms[name].push((await timed(argv, env)).ms);
  fs.rmSync(home, { recursive: true, force: true });
  const base = median(ms['node:wasi']);
  const rows = Object.entries(ms).map(([name, xs]) => ({
    run: name,
    'median ms': median(xs),
    'min ms': Math.min(...xs),
    'vs node:wasi ms': median(xs) - base,
    ratio: median(xs) / base,
  }));
  console.log(`start-up of examples/args.wasm, ${SAMPLES} samples each, interleaved`);
  console.log(table(rows));
  const extra = median(ms.roam) - base;
  console.log(
    `roam - node:wasi = ${extra.toFixed(1)} ms (target <= ${TARGET_MS} ms: ${extra <= TARGET_MS ? 'met' : 'NOT met'})`,
  );
  writeJson(jsonPath('startup'), {
    program: 'examples/args.wasm',
    samples: SAMPLES,
    loadavg: os.loadavg(),
    target_ms: TARGET_MS,
    roam_minus_node_wasi_ms: extra,
    rows,
    raw_ms: ms,
  });
}

await main();
