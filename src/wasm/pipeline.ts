// The instrumentation pipeline behind prepare(): loaded on demand, because
// Binaryen takes a few hundred milliseconds to load and a cached module needs none of it.
//
//  1. roam's own passes, in binaryen.js: safepoint polls, the hidden region,
//     exported globals, the imported memory                      (~1 s per MiB)
//  2. Asyncify, only over the functions that can reach a blocking import
//     (instrument.ts: unwindableFunctions), by Debian's native multithreaded
//     `wasm-opt` when it is installed, else by binaryen.js        (most of the time)
//  3. plain   = the Asyncify output as it is
//     tracked = plain + the write barrier, in binaryen.js         (~1 s per MiB)
//
// No whole-module optimiser runs after Asyncify: its own optimisation of the
// functions it rewrites is kept (optimize level 1), the functions it leaves
// alone are as the compiler made them, and V8 optimises the rest. The full -O2
// over the module (twice, once per variant) was most of the time and made the
// running program no faster that could be measured (bench/real).
import binaryen from 'binaryen';
import {
  checkSupported,
  exportMutableGlobals,
  hideRegion,
  insertPolls,
  ROAM,
  unwindableFunctions,
} from './instrument.js';
import { insertBarrier } from './barrier.js';
import { WASM_FEATURES } from '../memory/features.js';
import { asyncifyNative, nativeWasmOpt } from './native.js';
import {
  ASYNCIFY_BYTES,
  BLOCKING_IMPORTS,
  PREPARE_VERSION,
  sha256,
  type PrepareMeta,
} from './prepare.js';

/** Binaryen's flags for each of roam's WASM features (the list itself is memory/features.ts). */
const BINARYEN_FLAGS: Record<string, () => number> = {
  'mutable-globals': () => binaryen.Features.MutableGlobals,
  'bulk-memory': () => binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt,
  'sign-ext': () => binaryen.Features.SignExt,
  'nontrapping-fptoint': () => binaryen.Features.NontrappingFPToInt,
  simd128: () => binaryen.Features.SIMD128,
  multivalue: () => binaryen.Features.Multivalue,
};
const FEATURES = (): number =>
  WASM_FEATURES.reduce((flags, f) => {
    const flag = BINARYEN_FLAGS[f];
    if (!flag) throw new Error(`internal error: no Binaryen flag for WASM feature ${f}`);
    return flags | flag();
  }, binaryen.Features.MVP);

function read(bytes: Uint8Array): binaryen.Module {
  let mod: binaryen.Module;
  try {
    mod = binaryen.readBinary(bytes);
  } catch (err) {
    throw new Error(`not a valid WebAssembly module (${(err as Error).message})`);
  }
  mod.setFeatures(FEATURES());
  return mod;
}

/** Emit `mod`, with its names when `names` (a later pass finds roam's globals by name). */
function emit(mod: binaryen.Module, names: boolean): Uint8Array {
  binaryen.setDebugInfo(names);
  try {
    return mod.emitBinary();
  } finally {
    binaryen.setDebugInfo(false);
  }
}

/** Asyncify in binaryen.js (single-threaded, and several times slower than wasm-opt). */
function asyncifyJs(pre: Uint8Array, only: string[] | null): Uint8Array {
  const mod = read(pre);
  binaryen.setOptimizeLevel(1);
  binaryen.setShrinkLevel(0);
  binaryen.setPassArgument('asyncify-imports', BLOCKING_IMPORTS.join(','));
  if (only) binaryen.setPassArgument('asyncify-onlylist', only.join(','));
  try {
    mod.runPasses(['asyncify']);
    return emit(mod, true);
  } finally {
    binaryen.setPassArgument('asyncify-imports', null);
    binaryen.setPassArgument('asyncify-onlylist', null);
    mod.dispose();
  }
}

export interface InstrumentOptions {
  /** Called with a line on each stage (the CLI prints them on stderr). */
  onStage?: (msg: string) => void;
  /** Use binaryen.js even when wasm-opt is installed (tests compare the two). */
  jsOnly?: boolean;
}

/** Runs the instrumentation pipeline (seconds per MiB of code) on a module prepare() has checked. */
export async function instrument(
  original: Uint8Array,
  opts: InstrumentOptions = {},
): Promise<{ meta: PrepareMeta; plain: Uint8Array; tracked: Uint8Array }> {
  const t0 = performance.now();
  const hash = sha256(original);
  const mod = read(original);
  checkSupported(mod);
  const mem = mod.getMemoryInfo();
  if (mem.shared || mem.is64) throw new Error('unsupported: shared or 64-bit memory');
  const declaredMax = mem.max ?? 65536;
  // Region: a byte per 4 KiB page of the whole 4 GiB (1 MiB), then the Asyncify buffer.
  const realMax = Math.min(65536, declaredMax);
  const bitmapBytes = realMax * 16;
  const regionPages = Math.ceil((bitmapBytes + ASYNCIFY_BYTES) / 65536);
  if (declaredMax - regionPages < mem.initial)
    throw new Error(
      `the module's maximum memory (${declaredMax} pages) leaves no room for roam's ${regionPages}-page region`,
    );

  const unwindable = unwindableFunctions(mod, new Set(BLOCKING_IMPORTS));
  const functions = mod.getNumFunctions();
  insertPolls(mod, unwindable);
  hideRegion(mod, mem.initial, regionPages);
  const globals = exportMutableGlobals(mod);
  // The memory is supplied by the kernel so that both variants share it.
  mod.addMemoryImport('0', 'roam', 'memory');
  const pre = emit(mod, true);
  mod.dispose();

  // Asyncify is told exactly which functions to rewrite (its own analysis assumes an
  // indirect call may reach anything), unless a name would not survive its list syntax.
  const only = [...unwindable];
  const listable = only.every((n) => /^[^,*\s]+$/.test(n));
  const t1 = performance.now();
  const native = opts.jsOnly ? null : nativeWasmOpt();
  opts.onStage?.(
    `Asyncify over ${unwindable.size} of ${functions} functions (${native ?? 'binaryen.js, single-threaded; install Debian binaryen for wasm-opt'})`,
  );
  const plain = native
    ? await asyncifyNative(native, pre, listable ? only : null)
    : asyncifyJs(pre, listable ? only : null);
  const asyncifyMs = performance.now() - t1;

  const tmod = read(plain);
  insertBarrier(tmod, new Set([ROAM.grow]));
  if (!tmod.validate()) throw new Error('internal error: the tracked variant does not validate');
  const tracked = emit(tmod, false);
  tmod.dispose();

  const meta: PrepareMeta = {
    version: PREPARE_VERSION,
    hash,
    regionPages,
    bitmapBytes,
    asyncifyOffset: bitmapBytes,
    asyncifyBytes: regionPages * 65536 - bitmapBytes,
    initialPages: mem.initial,
    maxPages: declaredMax - regionPages,
    globals,
    unwindable: unwindable.size,
    bytes: { original: original.length, plain: plain.length, tracked: tracked.length },
    prepareMs: Math.round(performance.now() - t0),
    asyncify: { by: native ?? `binaryen.js ${PACKAGE_BINARYEN}`, ms: Math.round(asyncifyMs) },
  };
  return { meta, plain, tracked };
}

/** The npm binaryen's version (pinned in package.json). */
const PACKAGE_BINARYEN = '132';
