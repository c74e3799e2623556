// The instrumentation pipeline behind prepare(): loaded on demand, because
// Binaryen takes a few hundred milliseconds to load and a cached module needs none of it.
import binaryen from 'binaryen';
import {
  checkSupported,
  exportMutableGlobals,
  hideRegion,
  insertBarrier,
  insertPolls,
  ROAM,
  unwindableFunctions,
} from './instrument.js';
import { WASM_FEATURES } from '../memory/features.js';
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

function optimise(mod: binaryen.Module): Uint8Array {
  binaryen.setOptimizeLevel(2);
  binaryen.setShrinkLevel(0);
  mod.optimize();
  if (!mod.validate()) throw new Error('internal error: instrumented module does not validate');
  return mod.emitBinary();
}

/** Runs the instrumentation pipeline (slow: seconds per MiB of code) on a module prepare() has checked. */
export function instrument(original: Uint8Array): {
  meta: PrepareMeta;
  plain: Uint8Array;
  tracked: Uint8Array;
} {
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
  insertPolls(mod, unwindable);
  hideRegion(mod, mem.initial, regionPages);
  const globals = exportMutableGlobals(mod);
  // The memory is supplied by the kernel so that both variants share it.
  mod.addMemoryImport('0', 'roam', 'memory');
  binaryen.setOptimizeLevel(1);
  binaryen.setPassArgument('asyncify-imports', BLOCKING_IMPORTS.join(','));
  mod.runPasses(['asyncify']);
  binaryen.setPassArgument('asyncify-imports', null);
  // Keep names in the intermediate binary: the barrier pass finds roam's globals by name.
  binaryen.setDebugInfo(true);
  const base = mod.emitBinary();
  binaryen.setDebugInfo(false);
  const plain = optimise(mod);
  mod.dispose();

  const tmod = read(base);
  insertBarrier(tmod, new Set([ROAM.grow]));
  const tracked = optimise(tmod);
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
  };
  return { meta, plain, tracked };
}
