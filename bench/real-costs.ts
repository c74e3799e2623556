// What each part of roam's instrumentation costs a real program: variants of one
// module, each run in this process under node:wasi (so roam's kernel is not in
// the figure), timed from _start to exit, interleaved, minimum of the samples.
//
//   orig      the module as compiled
//   polls     + safepoint polls (a stub kernel refills the fuel at each trip)
//   asyncify  + Asyncify over the unwindable functions, no polls
//   plain     polls + Asyncify: what roam runs outside a checkpoint
//   tracked   plain + the write barrier: what roam runs while the cleaner works
//
// Usage: node dist/bench/real-costs.js [--samples N] PROGRAM.wasm [ARGS...]
// e.g.   node dist/bench/real-costs.js .guests/sqlite-speed.wasm :memory: 10
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';
import binaryen from 'binaryen';
import { insertBarrier } from '../src/wasm/barrier.js';
import { hideRegion, insertPolls, unwindableFunctions } from '../src/wasm/instrument.js';
import { asyncifyNative, nativeWasmOpt } from '../src/wasm/native.js';
import { BLOCKING_IMPORTS } from '../src/wasm/prepare.js';
import { jsonPath, table, writeJson } from './util.js';

const argv = process.argv.slice(2);
let samples = 3;
if (argv[0] === '--samples') samples = Number(argv.splice(0, 2)[1]);
const [file, ...args] = argv;
if (!file) throw new Error('usage: real-costs [--samples N] PROGRAM.wasm [ARGS...]');
const REGION = 17;
const F = binaryen.Features;
const FEATURES =
  F.MutableGlobals |
  F.BulkMemory |
  F.BulkMemoryOpt |
  F.SignExt |
  F.NontrappingFPToInt |
  F.SIMD128 |
  F.Multivalue;
const original = fs.readFileSync(file);
const native = nativeWasmOpt();
if (!native) throw new Error('real-costs needs a native wasm-opt (apt-get install binaryen)');

async function build(polls: boolean, asyncify: boolean, barrier: boolean) {
  const mod = binaryen.readBinary(original);
  mod.setFeatures(FEATURES);
  const initial = mod.getMemoryInfo().initial;
  const unwindable = unwindableFunctions(mod, new Set(BLOCKING_IMPORTS));
  if (polls) insertPolls(mod, unwindable);
  hideRegion(mod, initial, REGION);
  mod.addMemoryImport('0', 'roam', 'memory');
  binaryen.setDebugInfo(true);
  let bytes: Uint8Array = mod.emitBinary();
  binaryen.setDebugInfo(false);
  mod.dispose();
  if (asyncify) bytes = await asyncifyNative(native!, bytes, [...unwindable]);
  if (barrier) {
    const t = binaryen.readBinary(bytes);
    t.setFeatures(FEATURES);
    insertBarrier(t, new Set(['roam_grow']));
    bytes = t.emitBinary();
    t.dispose();
  }
  return { bytes, initial };
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-costs-'));
async function run(v: { bytes: Uint8Array; initial: number } | null): Promise<number> {
  const wasi = new WASI({
    version: 'preview1',
    args: [file, ...args],
    env: {},
    preopens: { '/': root },
  });
  const memory = new WebAssembly.Memory({ initial: (v?.initial ?? 0) + REGION, maximum: 65536 });
  const fuel: { g?: WebAssembly.Global; h?: WebAssembly.Global } = {};
  const poll = (kind: number) => {
    if (kind) fuel.h!.value = 1;
    else fuel.g!.value = 1024;
  };
  const mod = await WebAssembly.compile((v?.bytes ?? original) as Uint8Array<ArrayBuffer>);
  const inst = await WebAssembly.instantiate(mod, {
    wasi_snapshot_preview1: wasi.wasiImport,
    roam: { memory, poll },
  });
  fuel.g = inst.exports.roam_fuel as WebAssembly.Global;
  fuel.h = inst.exports.roam_hfuel as WebAssembly.Global;
  const t0 = performance.now();
  wasi.start(v ? { exports: { ...inst.exports, memory } } : inst);
  return performance.now() - t0;
}

const variants: Record<string, [boolean, boolean, boolean] | null> = {
  orig: null,
  polls: [true, false, false],
  asyncify: [false, true, false],
  plain: [true, true, false],
  tracked: [true, true, true],
};
const built = new Map<string, { bytes: Uint8Array; initial: number } | null>();
for (const [name, v] of Object.entries(variants)) {
  process.stderr.write(`real-costs: building ${name}\n`);
  built.set(name, v ? await build(...v) : null);
}
const ms = new Map<string, number[]>();
for (let i = 0; i < samples; i++)
  for (const name of built.keys()) {
    const t = await run(built.get(name)!);
    ms.set(name, [...(ms.get(name) ?? []), t]);
  }
fs.rmSync(root, { recursive: true, force: true });
const base = Math.min(...ms.get('orig')!);
const rows = [...ms].map(([name, xs]) => ({
  variant: name,
  'min ms': Math.min(...xs),
  'vs orig': Math.min(...xs) / base,
  samples: xs.map((x) => x.toFixed(0)).join(' '),
}));
console.log(table(rows));
console.log(
  `\n${path.basename(file)} ${args.join(' ')}; Asyncify by ${native}; load average ${os.loadavg()[0].toFixed(1)}`,
);
writeJson(jsonPath('real-costs'), {
  when: new Date().toISOString(),
  file,
  args,
  loadavg: os.loadavg(),
  rows,
});
